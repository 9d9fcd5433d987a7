using AttnDreamBooth.IO;

namespace AttnDreamBooth.Training;

/// <summary>A checkpoint found unusable while looking for one to resume from.</summary>
/// <param name="Path">The checkpoint folder.</param>
/// <param name="Problem">Why it cannot be used.</param>
internal sealed record SkippedCheckpoint(string Path, string Problem);

/// <summary>
/// What a checkpoint folder holds, per run: which checkpoints belong to which run (by fingerprint), which is the newest
/// valid one (a truncated or corrupt newest checkpoint is reported and the previous valid one used), and whether a new
/// run may write there.
/// </summary>
internal static class CheckpointFolder
{
    /// <summary>Reads only <c>checkpoint.json</c> of a checkpoint folder.</summary>
    /// <exception cref="ModelConfigException">Missing or invalid.</exception>
    public static TrainingCheckpointState ReadState(string checkpoint) =>
        CheckpointFiles.ReadDescription<TrainingCheckpointState>(checkpoint, "checkpoint description");

    /// <summary>Checks a checkpoint without loading its tensors: the description parses and the state file's header is
    /// valid and fits the file's length (so a truncated file is caught). Returns null when usable, else the problem.</summary>
    public static string? Problem(string checkpoint)
    {
        try
        {
            var state = ReadState(checkpoint);
            if (state.FormatVersion != 1) return $"format version {state.FormatVersion} is not supported";
            using var file = SafetensorsFile.Open(Path.Combine(checkpoint, TrainingCheckpoint.StateFile));
            return file.Names.Contains("concept.embedding") ? null : "the state file holds no concept embedding";
        }
        catch (Exception e) when (e is IOException or FormatException or AttnDreamBoothException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>The newest usable checkpoint under <paramref name="root"/> (optionally only of the run
    /// <paramref name="fingerprint"/>), and the newer ones skipped as unusable.</summary>
    public static (string? Checkpoint, IReadOnlyList<SkippedCheckpoint> Skipped) LatestValid(string root, string? fingerprint = null)
    {
        var skipped = new List<SkippedCheckpoint>();
        foreach (string candidate in TrainingCheckpoint.List(root))
        {
            string? problem = Problem(candidate);
            if (problem is null && fingerprint is not null && ReadState(candidate).RunFingerprint != fingerprint) continue;
            if (problem is null) return (candidate, skipped);
            skipped.Add(new SkippedCheckpoint(candidate, problem));
        }
        return (null, skipped);
    }

    /// <summary>Checkpoints under <paramref name="root"/> whose description names another run than <paramref name="fingerprint"/>
    /// (unreadable ones count as foreign: they are not ours to delete).</summary>
    public static IReadOnlyList<string> OtherRuns(string root, string fingerprint) =>
        TrainingCheckpoint.List(root).Where(c =>
        {
            try { return ReadState(c).RunFingerprint != fingerprint; }
            catch (ModelConfigException) { return true; }
        }).ToArray();
}
