using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>The train command's output folder rules: a run owns its folder, it must be writable before training starts,
/// and a resume says what it resumed.</summary>
internal static class TrainOutput
{
    /// <summary>Refuses an existing concept folder unless <c>--force</c> (checked before the model is even loaded).</summary>
    public static void RequireOwnConcept(string conceptFolder, bool force)
    {
        string full = Path.GetFullPath(conceptFolder);
        if (force || !Directory.Exists(full) || !Directory.EnumerateFileSystemEntries(full).Any()) return;
        throw new OutputFolderException(full, "already holds a concept (from an earlier run?); choose another --out, or pass --force to replace it");
    }

    /// <summary>The output folder must take the concept (the U-Net in float32 plus the embedding) before training starts.</summary>
    public static void RequireWritable(string outDir, PersonalizationPipeline pipeline)
    {
        long unetBytes = pipeline.Components.UNet.parameters().Sum(p => p.NumberOfElements) * 4;
        OutputFolders.RequireWritable(outDir, unetBytes + (1 << 20), "output (concept)");
    }

    /// <summary>Says what the run will cost before it starts, and warns when a real-size model is about to train on the CPU.</summary>
    public static void PrintEstimate(IAnsiConsole console, TrainingEstimate estimate)
    {
        // Written raw: Spectre would wrap the long lines at the console width.
        var writer = console.Profile.Out.Writer;
        foreach (string line in estimate.Describe()) writer.WriteLine(TerminalText.Safe(line));
        if (estimate.Warning() is { } warning) writer.WriteLine($"warning: {TerminalText.Safe(warning)}");
        writer.Flush();
    }

    /// <summary>What the run is: model, photos, output, device, preset and steps per stage.</summary>
    public static void PrintHeader(IAnsiConsole console, string model, Concept concept, string images, string outDir, string device, string preset, StagePlan plan)
    {
        var writer = console.Profile.Out.Writer;
        writer.WriteLine(TerminalText.Safe($"model   {Path.GetFullPath(model)}"));
        writer.WriteLine(TerminalText.Safe($"photos  {concept.Images.Count} in {Path.GetFullPath(images)} (\"{concept.Token} {concept.Category}\")"));
        writer.WriteLine(TerminalText.Safe($"output  {Path.GetFullPath(outDir)}"));
        writer.WriteLine(TerminalText.Safe($"run     device {device}, preset {preset}, {plan.TotalSteps} steps: "
            + string.Join(" + ", plan.EnabledStages.Select(s => $"{plan[s].Steps} stage {(int)s} {s.DisplayName()}"))));
        writer.Flush();
    }

    /// <summary>The newest valid checkpoint, saying which newer ones were unusable and what is resumed.</summary>
    public static string? ResumePoint(IAnsiConsole console, string checkpointDir, StagePlan plan)
    {
        var (checkpoint, skipped) = CheckpointFolder.LatestValid(checkpointDir);
        foreach (var s in skipped)
            console.MarkupLineInterpolated($"[yellow]warning:[/] checkpoint {s.Path} is unusable ({s.Problem}); trying the previous one");
        if (checkpoint is null)
        {
            console.MarkupLineInterpolated($"[yellow]No valid checkpoint in {checkpointDir}; starting from the beginning.[/]");
            return null;
        }
        var state = CheckpointFolder.ReadState(checkpoint);
        var stage = (TrainingStage)state.Stage;
        string ofSteps = Enum.IsDefined(stage) ? $"/{plan[stage].Steps}" : "";
        console.Profile.Out.Writer.WriteLine(TerminalText.Safe(
            $"resumed from {Path.GetFileName(checkpoint)} at stage {state.Stage} {stage.DisplayName()} step {state.StepInStage}{ofSteps} (step {state.GlobalStep}/{plan.TotalSteps} overall; {checkpoint})"));
        console.Profile.Out.Writer.Flush();
        return checkpoint;
    }
}
