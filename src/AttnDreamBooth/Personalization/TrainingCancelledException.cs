namespace AttnDreamBooth.Personalization;

/// <summary>
/// Training stopped because its <see cref="CancellationToken"/> was cancelled. The step in progress was finished and,
/// when the run writes checkpoints, a checkpoint of that step was written first, so resuming loses nothing.
/// </summary>
public sealed class TrainingCancelledException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    public TrainingCancelledException(int stage, int stepInStage, int globalStep, string? checkpointPath, CancellationToken token)
        : base(checkpointPath is null
            ? $"Training was cancelled at stage {stage} step {stepInStage} (no checkpoint directory is set, so nothing was saved)."
            : $"Training was cancelled at stage {stage} step {stepInStage}; checkpoint '{checkpointPath}' holds the last completed step.", token)
    {
        Stage = stage;
        StepInStage = stepInStage;
        GlobalStep = globalStep;
        CheckpointPath = checkpointPath;
    }

    /// <summary>The stage (1–3) that was being trained.</summary>
    public int Stage { get; }

    /// <summary>Completed steps of <see cref="Stage"/>.</summary>
    public int StepInStage { get; }

    /// <summary>Completed steps over all stages.</summary>
    public int GlobalStep { get; }

    /// <summary>The checkpoint that holds the last completed step, or null without a checkpoint directory.</summary>
    public string? CheckpointPath { get; }
}
