using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// The whole flow on the bundled tiny model: train a concept from the sample dog photos with a few steps per
/// stage, save it, reload it, generate images with heatmaps and plot the loss.
/// </summary>
internal static class Demo
{
    /// <summary>A plan small enough for a 2-core CPU: the paper's learning rates and weights, few steps, small batches.</summary>
    public static StagePlan Plan => StagePlan.Paper.WithSteps(8, 8, 8).WithBatchSize(2) with { CheckpointInterval = 4 };

    public static readonly string[] Prompts = ["a photo of {}", "a {} in the snow", "a {} wearing a red hat"];

    public static async Task<int> RunAsync(IAnsiConsole console, string outDir, CancellationToken ct)
    {
        string root = RepoPaths.FindRoot();
        string model = Path.Combine(root, RepoPaths.TinyPipeline);
        string photos = Path.Combine(root, RepoPaths.DogPhotos);
        string output = Path.GetFullPath(outDir);
        console.Write(new Rule("[bold]AttnDreamBooth demo[/]"));
        console.MarkupLine("[yellow]This demo uses the tiny test model (random weights): it shows the whole flow, not real images.[/]");
        console.MarkupLineInterpolated($"model  {TerminalText.Safe(model)}\nphotos {TerminalText.Safe(photos)}\noutput {TerminalText.Safe(output)}");

        var concept = Concept.FromFolder(photos, category: "dog");
        using (var pipeline = PersonalizationPipeline.FromPretrained(model)
                   .WithStages(Plan)
                   .WithTrainingOptions(new TrainingOptions
                   {
                       Seed = 42,
                       CheckpointDirectory = Path.Combine(output, "checkpoints"),
                       Data = new TrainingDataOptions { VariantsPerImage = 4, Images = new ConceptImageOptions { Resolution = 0 } },
                   })
                   .Build(ct))
        {
            var trained = await CliApp.TrainWithProgressAsync(console, pipeline, concept, resumeFrom: null, ct);
            await trained.SaveAsync(Path.Combine(output, "concept"), ct);
            LossPlot.Save(trained.LossHistory, CliApp.StageStarts(Plan), Path.Combine(output, "loss.png"));
            console.MarkupLineInterpolated($"saved the concept to {TerminalText.Safe(Path.Combine(output, "concept"))}");
        }

        // Generation from the saved folder, as a user would after training.
        using var fresh = PersonalizationPipeline.FromPretrained(model).Build(ct);
        var loaded = await PersonalizedModel.LoadAsync(Path.Combine(output, "concept"), fresh, ct);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var options = new GenerationOptions { Steps = 20, Seed = i, HeatmapTokens = [loaded.Token], HeatmapResolution = 16 };
            var images = await GenerationDisplay.RunAsync(console, $"prompt {i + 1}/{Prompts.Length}", progress => fresh.GenerateAsync(Prompts[i], options, progress, ct));
            foreach (var image in images)
            {
                string name = $"prompt{i}-seed{image.Seed}";
                image.SavePng(Path.Combine(output, "images", name + ".png"));
                var overlay = image.EncodeHeatmapOverlayPng(loaded.Token);
                AttnDreamBooth.IO.AtomicFile.Write(Path.Combine(output, "heatmaps", name + ".png"), s => s.Write(overlay));
                console.MarkupLineInterpolated($"\"{TerminalText.Safe(image.Prompt)}\" → images/{TerminalText.Safe(name)}.png, heatmaps/{TerminalText.Safe(name)}.png");
            }
        }
        console.MarkupLineInterpolated($"[green]Done.[/] Outputs in {TerminalText.Safe(output)}: concept/, images/, heatmaps/, loss.png");
        return 0;
    }
}
