using System.CommandLine;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary><c>shapes diagnose</c>: how much a model's denoiser uses its text (error with own / empty / wrong caption).</summary>
internal static class ShapesDiagnoseCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string>("--model") { Description = "The model folder (e.g. samples/models/shapes-sd).", Required = true };
        var images = new Option<int>("--images") { Description = "Renders measured at each timestep.", DefaultValueFactory = _ => 64 };
        var seed = new Option<long>("--seed") { Description = "Seed of the renders and the noise.", DefaultValueFactory = _ => 7 };
        var command = new Command("diagnose", "Measure how much the denoiser uses its text: epsilon error with the image's own caption, the empty caption and another image's caption.")
        {
            model, images, seed,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, () =>
        {
            int count = parse.GetValue(images);
            if (count is < 2 or > 100_000) throw new ArgumentException($"--images must be in [2, 100000]; got {count}.");
            using var components = StableDiffusionComponents.Load(parse.GetValue(model)!, ct: ct);
            var rows = ShapesConditioningProbe.Measure(components, ShapesWorld.Default, count, seed: parse.GetValue(seed), ct: ct);
            var table = new Table().AddColumns("timestep", "own caption", "empty caption", "other caption", "text gain");
            foreach (var r in rows)
                table.AddRow(r.Timestep.ToString(), $"{r.OwnCaption:F4}", $"{r.EmptyCaption:F4}", $"{r.OtherCaption:F4}", $"{r.TextGain:P1}");
            console.Write(table);
            return Task.FromResult(0);
        }));
        return command;
    }
}
