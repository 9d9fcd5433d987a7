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
        var output = new Option<string?>("--out") { Description = "Write the full report (every image's prompt and measurements) as JSON here." };
        var command = new Command("quality", "Generate images for held-out prompts and measure shape, colour, background, position and size with the analyzer.")
        {
            model, prompts, seeds, steps, output,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            using var pipeline = PersonalizationPipeline.FromPretrained(parse.GetValue(model)!).Build(ct);
            QualityReport? report = null;
            int count = parse.GetValue(prompts);
            await console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new RemainingTimeColumn()).StartAsync(async ctx =>
            {
                var task = ctx.AddTask("prompts", maxValue: count);
                report = await ShapesModelQuality.MeasureAsync(pipeline, ShapesWorld.Default, count, parse.GetValue(seeds),
                    new GenerationOptions { Steps = parse.GetValue(steps) }, progress: new SynchronousProgress<int>(n => task.Value = n), ct: ct);
            });
            var table = new Table().AddColumns("attribute", "correct", "images", "accuracy");
            foreach (var a in report!.Attributes) table.AddRow(a.Attribute, a.Correct.ToString(), a.Total.ToString(), $"{a.Accuracy:P1}");
            console.Write(table);
            if (parse.GetValue(output) is { } path)
            {
                AttnDreamBooth.IO.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
                console.MarkupLineInterpolated($"wrote {path}");
            }
            return 0;
        }));
        return command;
    }
}
