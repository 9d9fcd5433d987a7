using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Shapes;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// <c>shapes</c>: the Shapes world. <c>render</c> writes samples (or a concept's photos) as PNGs with captions.jsonl,
/// <c>analyze</c> measures attributes back from PNGs, <c>accuracy</c> scores the analyzer on fresh renders.
/// Other <c>shapes</c> subcommands (e.g. <c>pretrain</c>) are added to the returned command by their own files.
/// </summary>
internal static class ShapesCommand
{
    public const string CaptionsFile = "captions.jsonl";
    public const string GridFile = "grid.png";


    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("shapes", "The Shapes world: render captioned samples or concept photos, analyze images, measure the analyzer.");
        command.Subcommands.Add(RenderCommand(console));
        command.Subcommands.Add(AnalyzeCommand(console));
        command.Subcommands.Add(AccuracyCommand(console));
        command.Subcommands.Add(ShapesExportCommand.Create(console));
        return command;
    }

    private static Option<string?> WorldOption() => new("--world") { Description = "World spec JSON (default: the embedded world.json)." };

    private static ShapesWorld LoadWorld(string? path) => path is null ? ShapesWorld.Default : ShapesWorld.Load(path);

    private static Command RenderCommand(IAnsiConsole console)
    {
        var world = WorldOption();
        var concept = new Option<string[]>("--concept") { Description = "Render these concept specs' photos (repeatable) instead of world samples." };
        var seed = new Option<long>("--seed") { Description = "Sampler seed (sample i is the same for every count).", DefaultValueFactory = _ => 0 };
        var count = new Option<int>("--count") { Description = "Number of images (default: 16, or the concept's photo count).", DefaultValueFactory = _ => 0 };
        var size = new Option<int>("--size") { Description = "Image side in pixels.", DefaultValueFactory = _ => 64 };
        var emptyCaptions = new Option<double>("--empty-captions") { Description = "Probability of an empty caption.", DefaultValueFactory = _ => 0 };
        var pairs = new Option<double>("--pairs") { Description = "Probability of a second object.", DefaultValueFactory = _ => 0.2 };
        var heldOut = new Option<string>("--held-out") { Description = "exclude (pretraining data) or only (held-out combinations).", DefaultValueFactory = _ => "exclude" };
        heldOut.AcceptOnlyFromAmong("exclude", "only");
        var grid = new Option<int>("--grid-columns") { Description = "Also write grid.png with this many columns (0: no grid).", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "Output folder.", Required = true };
        var command = new Command("render", "Render world samples (or a concept's photos) as PNGs plus captions.jsonl (file, caption, scene).")
        {
            world, concept, seed, count, size, emptyCaptions, pairs, heldOut, grid, output,
        };
        command.SetAction((parse, ct) => Guarded(console, () =>
        {
            var w = LoadWorld(parse.GetValue(world));
            int n = parse.GetValue(count), side = parse.GetValue(size), columns = parse.GetValue(grid);
            if (n < 0 || n > 1_000_000) throw new ArgumentException($"--count must be in [0, 1000000]; got {n}.");
            if (side < 16 || side > 1024) throw new ArgumentException($"--size must be in [16, 1024]; got {side}.");
            if (columns < 0) throw new ArgumentException($"--grid-columns must not be negative; got {columns}.");
            string outDir = Path.GetFullPath(parse.GetValue(output)!);
            Directory.CreateDirectory(outDir);
            var lines = new StringBuilder();
            var images = new List<RgbImage>();
            void Write(int i, ShapesRendering r, string caption)
            {
                string file = $"{i:D5}.png";
                r.Image.SavePng(Path.Combine(outDir, file));
                var line = new JsonObject { ["file"] = file, ["caption"] = caption, ["scene"] = ShapesJson.Scene(r.Scene) };
                lines.Append(line.ToJsonString()).Append('\n');
                if (columns > 0 && images.Count < 256) images.Add(r.Image);
            }

            if (parse.GetValue(concept) is { Length: > 0 } conceptPaths)
            {
                var specs = conceptPaths.Select(p => ConceptSpec.Load(p, w)).ToArray();
                int written = 0;
                foreach (var spec in specs)
                    for (int i = 0; i < (n == 0 ? spec.Photos.Count : n); i++)
                    {
                        ct.ThrowIfCancellationRequested();
                        Write(written++, ShapesRenderer.Render(spec.PhotoScene(w, i), side), $"a photo of a {spec.Category.Word}");
                    }
                n = written;
            }
            else
            {
                if (n == 0) n = 16;
                var sampler = new ShapesSampler(w, parse.GetValue(seed), new ShapesSamplerOptions
                {
                    ImageSize = side,
                    EmptyCaptionProbability = parse.GetValue(emptyCaptions),
                    SecondObjectProbability = parse.GetValue(pairs),
                    HeldOut = parse.GetValue(heldOut) == "only" ? HeldOutPolicy.Only : HeldOutPolicy.Exclude,
                });
                for (int i = 0; i < n; i++)
                {
                    ct.ThrowIfCancellationRequested();
                    var s = sampler.Sample(i);
                    Write(i, new ShapesRendering(s.Image, s.Scene, s.Masks), s.Caption);
                }
            }
            AtomicFile.WriteAllText(Path.Combine(outDir, CaptionsFile), lines.ToString());
            if (columns > 0) ShapesImageGrid.Compose(images, columns, scale: 2).SavePng(Path.Combine(outDir, GridFile));
            console.MarkupLineInterpolated($"[green]Wrote[/] {n} images and {CaptionsFile} to {outDir}.");
            return 0;
        }));
        return command;
    }

    private static Command AnalyzeCommand(IAnsiConsole console)
    {
        var world = WorldOption();
        var concept = new Option<string?>("--concept") { Description = "Also score each image's identity against this concept spec." };
        var output = new Option<string?>("--out") { Description = "Write the JSON here instead of to the console." };
        var blur = new Option<double>("--blur") { Description = "Gaussian blur sigma in pixels applied to each image before analysis (robustness check).", DefaultValueFactory = _ => 0 };
        var inputs = new Argument<string[]>("images") { Description = "PNG/JPEG files or folders of them.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("analyze", "Measure background, objects (mask, centroid, area, shape, colour, pattern, size, position) and optionally a concept's identity; prints JSON.")
        {
            world, concept, output, blur, inputs,
        };
        command.SetAction((parse, ct) => Guarded(console, () =>
        {
            double blurSigma = parse.GetValue(blur);
            if (!(blurSigma >= 0 && blurSigma <= 4)) throw new ArgumentException($"--blur must be in [0, 4]; got {blurSigma}.");
            var degradation = blurSigma > 0 ? new ImageDegradation(blurSigma, 0) : null;
            var w = LoadWorld(parse.GetValue(world));
            var spec = parse.GetValue(concept) is { } c ? ConceptSpec.Load(c, w) : null;
            var analyzer = new ShapesAnalyzer(w);
            var results = new JsonArray();
            foreach (string file in ExpandInputs(parse.GetValue(inputs)!))
            {
                ct.ThrowIfCancellationRequested();
                var image = LoadBounded(file);
                if (degradation is not null) image = degradation.Apply(image, seed: 0);
                var analysis = analyzer.Analyze(image);
                var node = ShapesJson.Analysis(analysis);
                node.Insert(0, "file", file);
                if (spec is not null)
                    node["identity"] = ShapesJson.Identity(analysis.Objects.Select(o => analyzer.Identify(image, o, spec)).MaxBy(i => i.Score) ?? ConceptIdentity.None);
                results.Add(node);
            }
            string json = JsonFiles.Serialize(results);
            if (parse.GetValue(output) is { } path)
            {
                AtomicFile.WriteAllText(path, json);
                console.MarkupLineInterpolated($"[green]Wrote[/] the analysis of {results.Count} images to {Path.GetFullPath(path)}.");
            }
            else
            {
                console.Profile.Out.Writer.WriteLine(json);
            }
            return 0;
        }));
        return command;
    }

    private static Command AccuracyCommand(IAnsiConsole console)
    {
        var world = WorldOption();
        var seed = new Option<long>("--seed") { Description = "Sampler seed of the fresh renders.", DefaultValueFactory = _ => 20261204 };
        var count = new Option<int>("--count") { Description = "Number of renders.", DefaultValueFactory = _ => 1000 };
        var size = new Option<int>("--size") { Description = "Image side in pixels.", DefaultValueFactory = _ => 64 };
        var heldOut = new Option<string>("--held-out") { Description = "exclude (pretraining distribution) or only (held-out combinations).", DefaultValueFactory = _ => "exclude" };
        heldOut.AcceptOnlyFromAmong("exclude", "only");
        var output = new Option<string?>("--out") { Description = "Also write the report (with every mistake) as JSON here." };
        var blur = new Option<double>("--blur") { Description = "Gaussian blur sigma in pixels applied before analysis (robustness check).", DefaultValueFactory = _ => 0 };
        var noise = new Option<double>("--noise") { Description = "Gaussian noise sigma (8-bit units) added before analysis.", DefaultValueFactory = _ => 0 };
        var command = new Command("accuracy", "Render fresh samples and score the analyzer against their ground truth, per attribute.")
        {
            world, seed, count, size, heldOut, output, blur, noise,
        };
        command.SetAction((parse, ct) => Guarded(console, () =>
        {
            var w = LoadWorld(parse.GetValue(world));
            int n = parse.GetValue(count), side = parse.GetValue(size);
            if (n < 1 || n > 1_000_000) throw new ArgumentException($"--count must be in [1, 1000000]; got {n}.");
            if (side < 16 || side > 1024) throw new ArgumentException($"--size must be in [16, 1024]; got {side}.");
            var policy = parse.GetValue(heldOut) == "only" ? HeldOutPolicy.Only : HeldOutPolicy.Exclude;
            double blurSigma = parse.GetValue(blur), noiseSigma = parse.GetValue(noise);
            if (!(blurSigma >= 0 && blurSigma <= 4)) throw new ArgumentException($"--blur must be in [0, 4]; got {blurSigma}.");
            if (!(noiseSigma >= 0 && noiseSigma <= 64)) throw new ArgumentException($"--noise must be in [0, 64]; got {noiseSigma}.");
            var degradation = blurSigma > 0 || noiseSigma > 0 ? new ImageDegradation(blurSigma, noiseSigma) : null;
            AnalyzerAccuracyReport report = null!;
            console.Progress().Start(progress =>
            {
                var task = progress.AddTask("renders", maxValue: n);
                report = AnalyzerAccuracy.Measure(w, parse.GetValue(seed), n, side, policy, new SynchronousProgress<int>(done => task.Value = done), ct, degradation);
            });
            var table = new Table().AddColumn("attribute").AddColumn("correct").AddColumn("total").AddColumn("accuracy");
            foreach (var a in report.Attributes)
                table.AddRow(a.Attribute, a.Correct.ToString(CultureInfo.InvariantCulture), a.Total.ToString(CultureInfo.InvariantCulture), a.Accuracy.ToString("P2", CultureInfo.InvariantCulture));
            console.MarkupLineInterpolated($"Analyzer accuracy on {n} renders (seed {report.Seed}, {side}x{side}, held-out: {parse.GetValue(heldOut)}, blur {blurSigma}, noise {noiseSigma}):");
            console.Write(table);
            if (parse.GetValue(output) is { } path)
            {
                var json = new JsonObject
                {
                    ["world"] = w.Name,
                    ["seed"] = report.Seed,
                    ["count"] = report.Count,
                    ["image_size"] = report.ImageSize,
                    ["held_out"] = parse.GetValue(heldOut),
                    ["blur"] = blurSigma,
                    ["noise"] = noiseSigma,
                    ["attributes"] = new JsonArray([.. report.Attributes.Select(a => (JsonNode)new JsonObject { ["attribute"] = a.Attribute, ["correct"] = a.Correct, ["total"] = a.Total, ["accuracy"] = Math.Round(a.Accuracy, 5) })]),
                    ["mistakes"] = new JsonArray([.. report.Mistakes.Select(m => (JsonNode)new JsonObject { ["index"] = m.Index, ["attribute"] = m.Attribute, ["expected"] = m.Expected, ["measured"] = m.Measured })]),
                };
                AtomicFile.WriteAllText(path, JsonFiles.Serialize(json));
            }
            return 0;
        }));
        return command;
    }

    /// <summary>Decodes an image with the analyzer's own size ceiling as the decoder's pixel limit, so a huge file is
    /// refused from its header before it is decoded.</summary>
    private static RgbImage LoadBounded(string file)
    {
        const int max = ShapesRenderer.MaxSize;
        var image = RgbImage.Load(file, AttnDreamBooth.IO.ResourceLimits.Default with { MaxImagePixels = (long)max * max });
        if (image.Width > max || image.Height > max)
            throw new ArgumentException($"'{file}' is {image.Width}x{image.Height}; the analyzer accepts at most {max}x{max}.");
        return image;
    }

    private static IEnumerable<string> ExpandInputs(string[] inputs)
    {
        foreach (string input in inputs)
        {
            if (Directory.Exists(input))
            {
                var files = Directory.GetFiles(input)
                    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg")
                    .Order(StringComparer.Ordinal).ToArray();
                if (files.Length == 0) throw new ArgumentException($"Folder '{input}' contains no PNG or JPEG images.");
                foreach (string f in files) yield return f;
            }
            else if (File.Exists(input)) yield return input;
            else throw new FileNotFoundException($"Image '{input}' does not exist.", input);
        }
    }

    /// <summary>The CLI's guard plus the Shapes spec errors; the actions are synchronous (CPU-bound, no awaits).</summary>
    private static Task<int> Guarded(IAnsiConsole console, Func<int> action) =>
        CliApp.Guarded(console, () =>
        {
            try
            {
                return Task.FromResult(action());
            }
            catch (InvalidShapesSpecException e)
            {
                throw new ArgumentException(e.Message, e);
            }
        });
}
