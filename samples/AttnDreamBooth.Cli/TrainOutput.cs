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

    /// <summary>The newest valid checkpoint, saying which newer ones were unusable and what is resumed.</summary>
    public static string? ResumePoint(IAnsiConsole console, string checkpointDir)
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
        console.MarkupLineInterpolated($"Resuming from {checkpoint}: stage {state.Stage} step {state.StepInStage} (global step {state.GlobalStep}).");
        return checkpoint;
    }
}
