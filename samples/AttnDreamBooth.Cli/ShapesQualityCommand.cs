using System.CommandLine;
using System.Text.Json;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary><c>shapes quality</c>: the analyzer's verdict on a model's images for held-out-combination prompts.</summary>
internal static class ShapesQualityCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string>("--model") { Description = "The model folder (e.g. samples/models/shapes-sd).", Required = true };
        var prompts = new Option<int>("--prompts") { Description = "Prompts (built from held-out combinations unless --combinations seen).", DefaultValueFactory = _ => 200 };
        var seeds = new Option<int>("--seeds") { Description = "Images (seeds) per prompt.", DefaultValueFactory = _ => 2 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps (default: the library's default).", DefaultValueFactory = _ => new GenerationOptions().Steps };
        var guidance = new Option<double>("--guidance")
        {
            Description = $"Classifier-free guidance scale (default {ShapesModelQuality.DefaultGuidanceScale:g}, the shipped model's, chosen on the seen combinations).",
            DefaultValueFactory = _ => ShapesModelQuality.DefaultGuidanceScale,
        };
        var combinations = new Option<string>("--combinations")
        {
            Description = "Which combinations the prompts are built from: held-out (never rendered in pretraining; the quality measurement) "
                + "or seen (a development split of combinations pretraining saw, for choosing settings without looking at the held-out prompts).",
            DefaultValueFactory = _ => "held-out",
        };
        var reconstruction = new Option<bool>("--reconstruction")
        {
            Description = "Measure the VAE's ceiling instead: render the same held-out scenes, encode and decode them, and analyze the reconstructions (one per prompt; --seeds and --steps do not apply).",
        };
        var conceptReconstruction = new Option<string[]>("--concept-reconstruction")
        {
            Description = "Measure the VAE's ceiling for personalization instead: the concept identity of its reconstructions of each concept's photos "
                + "(concept spec files or folders of them); --grid shows each concept's photos and reconstructions.",
            AllowMultipleArgumentsPerToken = true,
        };
        var adaptDecoder = new Option<bool>("--adapt-decoder")
        {
            Description = "With --concept-reconstruction: also adapt a fresh copy of the VAE decoder to each concept's photos (the demo's settings) and measure "
                + "its reconstructions of those photos, of 10 new photos of the concept and of 100 held-out world scenes.",
        };
        var output = new Option<string?>("--out") { Description = "Write the full report (every image's prompt and measurements) as JSON here." };
        var grid = new Option<string?>("--grid")
        {
            Description = "Write a PNG grid here: the images the table counts for the first --grid-prompts prompts (a row each, a column per seed), each labelled with what the analyzer measured against what was asked.",
        };
        var gridPrompts = new Option<int?>("--grid-prompts") { Description = $"Prompts (rows) in the --grid picture (default {DefaultGridPrompts}, at most --prompts)." };
        var command = new Command("quality", "Generate images for held-out prompts and measure shape, colour, background, position and size with the analyzer.")
        {
            model, prompts, seeds, steps, guidance, combinations, reconstruction, conceptReconstruction, adaptDecoder, output, grid, gridPrompts,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            if (parse.GetValue(conceptReconstruction) is { Length: > 0 } conceptSources)
            {
                if (parse.GetValue(reconstruction) || parse.GetValue(gridPrompts) is not null)
                    throw new CliUsageException("--concept-reconstruction measures concepts' photos; it does not combine with --reconstruction or --grid-prompts.");
                if (parse.GetValue(adaptDecoder))
                {
                    if (parse.GetValue(grid) is not null) throw new CliUsageException("--adapt-decoder writes no grid; leave out --grid.");
                    return MeasureAdaptedDecoders(console, parse.GetValue(model)!, conceptSources, parse.GetValue(output), ct);
                }
                return MeasureConcepts(console, parse.GetValue(model)!, conceptSources, parse.GetValue(output), parse.GetValue(grid), ct);
            }
            if (parse.GetValue(adaptDecoder)) throw new CliUsageException("--adapt-decoder goes with --concept-reconstruction.");
            QualityReport? report = null;
            int count = parse.GetValue(prompts);
            if (count is < 1 or > 100_000) throw new CliUsageException($"--prompts must be in [1, 100000]; got {count}.");
            double scale = parse.GetValue(guidance);
            if (!double.IsFinite(scale) || scale < 0) throw new CliUsageException($"--guidance must be a finite number ≥ 0; got {scale}.");
            var split = parse.GetValue(combinations) switch
            {
                "held-out" => HeldOutPolicy.Only,
                "seen" => HeldOutPolicy.Exclude,
                var other => throw new CliUsageException($"--combinations must be held-out or seen; got '{other}'."),
            };
            if (parse.GetValue(reconstruction) && split != HeldOutPolicy.Only)
                throw new CliUsageException("--reconstruction measures the held-out scenes; it does not combine with --combinations seen.");
            var picture = GridFor(parse.GetValue(grid), parse.GetValue(gridPrompts), count);
            await console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new RemainingTimeColumn()).StartAsync(async ctx =>
            {
                var task = ctx.AddTask("prompts", maxValue: count);
                var progress = new SynchronousProgress<int>(n => task.Value = n);
                if (parse.GetValue(reconstruction))
                {
                    using var components = StableDiffusionComponents.Load(parse.GetValue(model)!, ct: ct);
                    report = ShapesModelQuality.MeasureReconstruction(components.Vae, ShapesWorld.Default, count, onImage: picture is null ? null : picture.Add, progress: progress, ct: ct);
                    return;
                }
                using var pipeline = PersonalizationPipeline.FromPretrained(parse.GetValue(model)!).Build(ct);
                report = await ShapesModelQuality.MeasureAsync(pipeline, ShapesWorld.Default, count, parse.GetValue(seeds),
                    new GenerationOptions { Steps = parse.GetValue(steps), GuidanceScale = scale }, onImage: picture is null ? null : picture.Add, progress: progress,
                    combinations: split, ct: ct);
            });
            var table = new Table().AddColumns("attribute", "correct", "images", "accuracy");
            foreach (var a in report!.Attributes) table.AddRow(a.Attribute, a.Correct.ToString(), a.Total.ToString(), $"{a.Accuracy:P1}");
            console.Write(table);
            if (report.Options is { } used)
                console.MarkupLineInterpolated($"{report.Samples.Count} images of {(split == HeldOutPolicy.Only ? "held-out" : "seen")} combinations; {used.Steps} steps, guidance {used.GuidanceScale:g}");
            else
                console.MarkupLineInterpolated($"{report.Samples.Count} VAE reconstructions of held-out scenes");
            if (parse.GetValue(output) is { } path)
            {
                AttnDreamBooth.IO.AtomicFile.WriteAllText(path, AttnDreamBooth.IO.JsonFiles.Serialize(report));
                console.MarkupLineInterpolated($"wrote {path}");
            }
            if (picture is not null)
            {
                string gridPath = parse.GetValue(grid)!;
                picture.Save(gridPath);
                console.MarkupLineInterpolated($"wrote {gridPath}");
            }
            return 0;
        }));
        return command;
    }

    private static int MeasureConcepts(IAnsiConsole console, string model, IEnumerable<string> sources, string? output, string? grid, CancellationToken ct)
    {
        if (grid is not null) RequirePngFile(grid);
        var world = ShapesWorld.Default;
        var concepts = ShapesExperimentCommand.LoadConcepts(sources, world);
        using var components = StableDiffusionComponents.Load(model, ct: ct);
        var results = ShapesModelQuality.MeasureConceptReconstruction(components.Vae, world, concepts, ct);
        var table = new Table().AddColumns("concept", "photos' identity", "reconstructions' identity", $"reconstructions ≥ {AttnDreamBooth.Shapes.Experiments.ConceptJudge.PresenceThreshold}");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Concept), $"{r.PhotoIdentity:F3}", $"{r.ReconstructionIdentity:F3}", $"{r.ReconstructionsPresent} of {r.Reconstructions.Count}");
        console.Write(table);
        console.MarkupLineInterpolated($"mean over {results.Count} concept(s): photos {results.Average(r => r.PhotoIdentity):F3}, reconstructions {results.Average(r => r.ReconstructionIdentity):F3}");
        if (output is not null)
        {
            AttnDreamBooth.IO.AtomicFile.WriteAllText(output, AttnDreamBooth.IO.JsonFiles.Serialize(results));
            console.MarkupLineInterpolated($"wrote {output}");
        }
        if (grid is not null)
        {
            // A row per concept: each photo followed by its reconstruction.
            int columns = 2 * results.Max(r => r.Images.Count);
            var cells = new List<AttnDreamBooth.Imaging.RgbImage>();
            foreach (var result in results)
            {
                var row = result.PhotoImages.Zip(result.Images, (p, r) => new[] { p, r }).SelectMany(x => x).ToList();
                var blank = new AttnDreamBooth.Imaging.RgbImage(row[0].Width, row[0].Height, new byte[row[0].Width * row[0].Height * 3]);
                while (row.Count < columns) row.Add(blank);
                cells.AddRange(row);
            }
            ShapesImageGrid.Compose(cells, columns, scale: 2).SavePng(grid);
            console.MarkupLineInterpolated($"wrote {grid}");
        }
        return 0;
    }

    private static int MeasureAdaptedDecoders(IAnsiConsole console, string model, IEnumerable<string> sources, string? output, CancellationToken ct)
    {
        const int NewPhotos = 10, WorldScenes = 100;
        var world = ShapesWorld.Default;
        var concepts = ShapesExperimentCommand.LoadConcepts(sources, world);
        string vaeFolder = Path.Combine(Path.GetFullPath(model), "vae");
        var options = AttnDreamBooth.Shapes.Experiments.ShapesPersonalization.DecoderAdaptation;
        console.MarkupLineInterpolated($"adapting a fresh copy of {TerminalText.Safe(vaeFolder)} to each concept's photos: {options.Steps} steps, lr {options.LearningRate}, batch {options.BatchSize}");
        var reports = DecoderAdaptationReport.Measure(() => AttnDreamBooth.Models.Vae.AutoencoderKL.FromFolder(vaeFolder), world, concepts, options, NewPhotos, WorldScenes, ct);
        string Present(ConceptReconstruction r) => $"{r.ReconstructionIdentity:F3} ({r.ReconstructionsPresent}/{r.Reconstructions.Count})";
        var table = new Table().AddColumns("concept", "before: photos", "after: photos", $"after: {NewPhotos} new photos", $"after: {WorldScenes} world scenes (shape/colour/background/position/size)");
        foreach (var r in reports)
            table.AddRow(Markup.Escape(r.Concept), Present(r.Before), Present(r.After), Present(r.NewPhotos),
                string.Join(" / ", r.World.Attributes.Select(a => $"{a.Accuracy:P1}")));
        console.Write(table);
        console.MarkupLineInterpolated($"mean over {reports.Count} concept(s): before {reports.Average(r => r.Before.ReconstructionIdentity):F3}, after {reports.Average(r => r.After.ReconstructionIdentity):F3}, new photos {reports.Average(r => r.NewPhotos.ReconstructionIdentity):F3}");
        if (output is not null)
        {
            AttnDreamBooth.IO.AtomicFile.WriteAllText(output, AttnDreamBooth.IO.JsonFiles.Serialize(reports));
            console.MarkupLineInterpolated($"wrote {output}");
        }
        return 0;
    }

    /// <summary>Rows of the <c>--grid</c> picture unless <c>--grid-prompts</c> says otherwise (fewer when there are fewer prompts).</summary>
    public const int DefaultGridPrompts = 12;

    /// <summary>The grid to fill during the measurement (only its prompts' images are kept), or null without <c>--grid</c>;
    /// checked before any image is generated.</summary>
    private static ShapesQualityGrid? GridFor(string? path, int? rows, int prompts)
    {
        if (path is null)
        {
            if (rows is not null) throw new CliUsageException("--grid-prompts sets the rows of the --grid picture; give --grid FILE.png too.");
            return null;
        }
        RequirePngFile(path);
        int n = rows ?? Math.Min(DefaultGridPrompts, prompts);
        if (n < 1 || n > Math.Min(prompts, ShapesQualityGrid.MaxPrompts))
            throw new CliUsageException($"--grid-prompts must be in [1, {Math.Min(prompts, ShapesQualityGrid.MaxPrompts)}] (at most --prompts and {ShapesQualityGrid.MaxPrompts}); got {n}.");
        return new ShapesQualityGrid(n);
    }

    private static void RequirePngFile(string path)
    {
        if (string.IsNullOrWhiteSpace(path) || !path.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            throw new CliUsageException($"--grid '{path}' must name a .png file.");
        if (Directory.Exists(path)) throw new CliUsageException($"--grid '{path}' is a folder; give a file name such as {Path.Combine(path, "quality.png")}.");
    }
}
