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
        var prompts = new Option<int>("--prompts") { Description = "Held-out-combination prompts.", DefaultValueFactory = _ => 200 };
        var seeds = new Option<int>("--seeds") { Description = "Images (seeds) per prompt.", DefaultValueFactory = _ => 2 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps (default: the library's default).", DefaultValueFactory = _ => new GenerationOptions().Steps };
        var reconstruction = new Option<bool>("--reconstruction")
        {
            Description = "Measure the VAE's ceiling instead: render the same held-out scenes, encode and decode them, and analyze the reconstructions (one per prompt; --seeds and --steps do not apply).",
        };
        var output = new Option<string?>("--out") { Description = "Write the full report (every image's prompt and measurements) as JSON here." };
        var command = new Command("quality", "Generate images for held-out prompts and measure shape, colour, background, position and size with the analyzer.")
        {
            model, prompts, seeds, steps, reconstruction, output,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            QualityReport? report = null;
            int count = parse.GetValue(prompts);
            if (count is < 1 or > 100_000) throw new ArgumentException($"--prompts must be in [1, 100000]; got {count}.");
            await console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new RemainingTimeColumn()).StartAsync(async ctx =>
            {
                var task = ctx.AddTask("prompts", maxValue: count);
                var progress = new SynchronousProgress<int>(n => task.Value = n);
                if (parse.GetValue(reconstruction))
                {
                    using var components = StableDiffusionComponents.Load(parse.GetValue(model)!, ct: ct);
                    report = ShapesModelQuality.MeasureReconstruction(components.Vae, ShapesWorld.Default, count, progress: progress, ct: ct);
                    return;
                }
                using var pipeline = PersonalizationPipeline.FromPretrained(parse.GetValue(model)!).Build(ct);
                report = await ShapesModelQuality.MeasureAsync(pipeline, ShapesWorld.Default, count, parse.GetValue(seeds),
                    new GenerationOptions { Steps = parse.GetValue(steps) }, progress: progress, ct: ct);
            });
            var table = new Table().AddColumns("attribute", "correct", "images", "accuracy");
            foreach (var a in report!.Attributes) table.AddRow(a.Attribute, a.Correct.ToString(), a.Total.ToString(), $"{a.Accuracy:P1}");
            console.Write(table);
            if (parse.GetValue(output) is { } path)
            {
                AttnDreamBooth.IO.AtomicFile.WriteAllText(path, AttnDreamBooth.IO.JsonFiles.Serialize(report));
                console.MarkupLineInterpolated($"wrote {path}");
            }
            return 0;
        }));
        return command;
    }
}
