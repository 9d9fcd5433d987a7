namespace AttnDreamBooth.Personalization;

/// <summary>The training loss became NaN or infinite. The last checkpoint (if any) is left as it was.</summary>
public sealed class TrainingDivergedException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(int stage, int step, double mse, double attention, string? lastCheckpoint)
        : base($"Training diverged in stage {stage} at step {step}: the loss is not finite (mse {mse}, attention {attention}). " +
               (lastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is '{lastCheckpoint}'.") +
               " Lower the learning rate or check the images.")
    {
        Stage = stage;
        Step = step;
        LastCheckpoint = lastCheckpoint;
    }

    /// <summary>The stage (1–3).</summary>
    public int Stage { get; }

    /// <summary>The step within the stage (1-based).</summary>
    public int Step { get; }

    /// <summary>The newest checkpoint on disk, or null.</summary>
    public string? LastCheckpoint { get; }
}
