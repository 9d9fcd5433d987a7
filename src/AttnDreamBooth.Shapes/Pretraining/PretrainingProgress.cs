namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The two phases of pretraining.</summary>
public enum PretrainingPhase
{
    /// <summary>The VAE alone, on renders.</summary>
    Vae,

    /// <summary>The text encoder and U-Net together, on the frozen VAE's latents.</summary>
    UNet,
}

/// <summary>A progress report, sent after every optimizer step (and when a checkpoint is written).</summary>
/// <param name="Phase">The running phase.</param>
/// <param name="Step">Steps completed in this phase.</param>
/// <param name="PhaseSteps">Steps of this phase.</param>
/// <param name="GlobalStep">Steps completed over both phases.</param>
/// <param name="TotalSteps">Steps of both phases.</param>
/// <param name="Loss">The step's loss (VAE: reconstruction + KL; U-Net: weighted epsilon MSE).</param>
/// <param name="LearningRate">The learning rate of the step.</param>
/// <param name="SecondsPerStep">Mean wall-clock seconds per step of this phase since the run (re)started.</param>
/// <param name="EstimatedRemaining">Estimated time to finish both phases (the U-Net phase is estimated from the VAE's
/// speed times <see cref="ShapesPretrainer.UNetToVaeStepCostRatio"/> until it has run), or null before the first step.</param>
public sealed record PretrainingProgress(
    PretrainingPhase Phase,
    int Step,
    int PhaseSteps,
    int GlobalStep,
    int TotalSteps,
    double Loss,
    double LearningRate,
    double SecondsPerStep,
    TimeSpan? EstimatedRemaining)
{
    /// <summary>The checkpoint written at this step, if one was.</summary>
    public string? CheckpointPath { get; init; }
}
