using System.CommandLine;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary><c>shapes diagnose</c>: how much a model's denoiser uses its text (error with own / empty / wrong caption) and,
/// with <c>--attributes</c>, which of its words.</summary>
internal static class ShapesDiagnoseCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string>("--model") { Description = "The model folder (e.g. samples/models/shapes-sd).", Required = true };
        var images = new Option<int>("--images") { Description = "Renders measured at each timestep.", DefaultValueFactory = _ => 64 };
        var seed = new Option<long>("--seed") { Description = "Seed of the renders and the noise.", DefaultValueFactory = _ => 7 };
        var attributes = new Option<bool>("--attributes")
        {
            Description = "Also measure which caption words the denoiser uses (the error rise when one attribute of the full caption names another value) and how far each such swap moves the text encoder's output.",
        };
        var command = new Command("diagnose", "Measure how much the denoiser uses its text: epsilon error with the image's own caption, the empty caption and another image's caption.")
        {
            model, images, seed, attributes,
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
            if (parse.GetValue(attributes))
            {
                var uses = ShapesConditioningProbe.MeasureAttributeUse(components, ShapesWorld.Default, count, seed: parse.GetValue(seed), ct: ct);
                // Rises only: the swapped errors themselves are the full caption's error times (1 + rise).
                var byAttribute = new Table { Title = new TableTitle("error rise when one word of the full caption names another value") }
                    .AddColumns(["timestep", "full caption", .. AttributeUse.Attributes]);
                foreach (var u in uses)
                    byAttribute.AddRow([u.Timestep.ToString(), $"{u.FullCaption:F4}", .. AttributeUse.Attributes.Select(a => Signed(u.Rise(a)))]);
                console.Write(byAttribute);
                var separation = ShapesConditioningProbe.MeasureTextSeparation(components, ShapesWorld.Default, count, parse.GetValue(seed), ct);
                var moves = new Table { Title = new TableTitle("text encoder: hidden-state move when one word names another value (relative to a token's norm)") }
                    .AddColumns("attribute", "mean over tokens", "peak token");
                foreach (var s in separation)
                    moves.AddRow(s.Attribute, s.MeanMove.ToString("F3", System.Globalization.CultureInfo.InvariantCulture),
                        s.PeakMove.ToString("F3", System.Globalization.CultureInfo.InvariantCulture));
                console.Write(moves);
            }
            return Task.FromResult(0);
        }));
        return command;
    }

    private static string Signed(double rise) => (rise >= 0 ? "+" : "") + rise.ToString("0.0%", System.Globalization.CultureInfo.InvariantCulture);
}
