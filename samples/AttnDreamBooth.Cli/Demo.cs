using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// The whole flow on the shipped Shapes model: render five photos of a concept the model has never seen, generate the
/// base model's images for new contexts, personalize, save and reload the concept, generate the same contexts with the
/// concept's token, and let the analyzer say for every image whether the prompt was followed and the concept is there.
/// </summary>
internal static class Demo
{
    /// <summary>The official fast preset carried over to the Shapes model.</summary>
    public static StagePlan Plan => ShapesPersonalization.Plan(StagePlan.Fast) with { CheckpointInterval = null };

    public const long Seed = 42;

    /// <summary>The images' sampler settings: the experiments' at the model's own guidance.</summary>
    public static GenerationOptions Sampling => ShapesPersonalization.DemoGeneration;

    public static async Task<int> RunAsync(IAnsiConsole console, string outDir, CancellationToken ct)
    {
        string root = RepoPaths.FindRoot();
        string model = Path.Combine(root, RepoPaths.ShapesModel);
        string output = Path.GetFullPath(outDir);
        var world = ShapesWorld.Default;
        var concept = ConceptSpec.Load(Path.Combine(root, RepoPaths.DemoConcept), world);
        var prompts = ConceptPrompts.NewContexts(world, concept);
        console.Write(new Rule("[bold]AttnDreamBooth demo[/]"));
        console.MarkupLineInterpolated($"model   {TerminalText.Safe(model)} (the Shapes world's text-to-image model, pretrained by this library)");
        console.MarkupLineInterpolated($"concept {TerminalText.Safe(concept.Name)}: {TerminalText.Safe(concept.Description)}");
        console.MarkupLineInterpolated($"plan    {Plan.TotalSteps} steps ({string.Join(" + ", Plan.EnabledStages.Select(s => $"{Plan[s].Steps} {s.DisplayName()}"))})");
        console.MarkupLineInterpolated($"images  {Sampling.Sampler ?? "dpm++"}, {Sampling.Steps} steps, guidance {Sampling.GuidanceScale} (the model's own), one seed per prompt");
        console.MarkupLineInterpolated($"output  {TerminalText.Safe(output)}");

        ConceptTrialResult result;
        using (var pipeline = PersonalizationPipeline.FromPretrained(model).WithStages(Plan).WithTrainingOptions(ShapesPersonalization.TrainingOptions(Seed)).Build(ct))
        {
            result = await CliApp.WithTrainingProgressAsync(console, Plan, progress => ConceptTrial.RunAsync(pipeline, world, concept, Path.Combine(output, "photos"), prompts,
                seeds: 1, includeBase: true, training: progress,
                generation: (personalized, done, total) => console.MarkupLineInterpolated($"[grey]{(personalized ? "personalized" : "base model")}: prompt {done}/{total}[/]"),
                sampling: Sampling, ct: ct));
            await result.Model.SaveAsync(Path.Combine(output, "concept"), ct);
            LossPlot.Save(result.Model.LossHistory, CliApp.StageStarts(Plan), Path.Combine(output, "loss.png"));
        }

        // The saved folder reloads into a fresh pipeline as a user's own program would load it; its images must be the trial's.
        using var fresh = PersonalizationPipeline.FromPretrained(model).Build(ct);
        var loaded = await PersonalizedModel.LoadAsync(Path.Combine(output, "concept"), fresh, ct);
        var first = result.Personalized[0];
        var again = await fresh.GenerateAsync(first.Prompt.Template, Sampling with { Seed = first.Image.Seed, HeatmapTokens = [loaded.Token] }, ct);
        bool same = again[0].Image.Pixels.AsSpan().SequenceEqual(first.Image.Image.Pixels);

        WriteImages(result, output);
        PrintVerdicts(console, result);
        console.MarkupLine("reloaded concept/ reproduces the first image: " + (same ? "[green]yes[/]" : "[red]no[/]"));
        console.MarkupLineInterpolated($"[green]Done.[/] Outputs in {TerminalText.Safe(output)}: photos/, concept/, images/, heatmaps/, grid.png, loss.png, verdicts.tsv");
        return same ? 0 : 1;
    }

    private static void WriteImages(ConceptTrialResult result, string output)
    {
        var rows = new List<RgbImage>();
        for (int i = 0; i < result.Personalized.Count; i++)
        {
            var personalized = result.Personalized[i];
            var baseline = result.Base[i];
            string name = $"prompt{i:D2}-seed{personalized.Image.Seed}";
            personalized.Image.SavePng(Path.Combine(output, "images", name + ".png"));
            baseline.Image.SavePng(Path.Combine(output, "images", name + "-base.png"));
            var overlay = personalized.Image.Heatmaps[result.Model.Token].RenderOverlay(personalized.Image.Image);
            overlay.SavePng(Path.Combine(output, "heatmaps", name + ".png"));
            rows.AddRange([baseline.Image.Image, personalized.Image.Image, overlay]);
        }
        ShapesImageGrid.Compose(rows, columns: 3, scale: 2).SavePng(Path.Combine(output, "grid.png"));
        var lines = new List<string> { "model\tprompt\tseed\tbackground_asked\tbackground_seen\tposition_asked\tposition_seen\tidentity\tconcept_present\theatmap_iou" };
        foreach (var (kind, images) in new[] { ("base", result.Base), ("personalized", result.Personalized) })
            foreach (var v in images.Select(i => i.Verdict))
                lines.Add(string.Join('\t', kind, v.Prompt, v.Seed, v.ExpectedBackground, v.MeasuredBackground, v.ExpectedPosition ?? "", v.MeasuredPosition ?? "",
                    v.Identity.Score.ToString("F3", System.Globalization.CultureInfo.InvariantCulture), v.ConceptPresent,
                    v.HeatmapIoU?.ToString("F3", System.Globalization.CultureInfo.InvariantCulture) ?? ""));
        AttnDreamBooth.IO.AtomicFile.WriteAllText(Path.Combine(output, "verdicts.tsv"), string.Join('\n', lines) + "\n");
    }

    private static void PrintVerdicts(IAnsiConsole console, ConceptTrialResult result)
    {
        static string Mark(bool? ok) => ok switch { true => "[green]yes[/]", false => "[red]no[/]", null => "[grey]–[/]" };
        var table = new Table().AddColumns("prompt", "background", "position", "concept (base → personalized)", "[[V]]-map IoU");
        for (int i = 0; i < result.Personalized.Count; i++)
        {
            var v = result.Personalized[i].Verdict;
            var b = result.Base[i].Verdict;
            table.AddRow(Markup.Escape(v.Prompt), Mark(v.BackgroundFollowed), Mark(v.PositionFollowed),
                $"{b.Identity.Score:F2} → {v.Identity.Score:F2} {Mark(v.ConceptPresent)}", v.HeatmapIoU is { } iou ? $"{iou:F2}" : "–");
        }
        console.Write(table);
        console.MarkupLineInterpolated(
            $"concept present: base model {result.BaseConceptPresence:P0} → personalized {result.ConceptPresence:P0}; background as asked {result.BackgroundAccuracy:P0}; position as asked {result.PositionAccuracy:P0}; mean [[V]]-map IoU {result.MeanHeatmapIoU ?? 0:F2}");
    }
}
