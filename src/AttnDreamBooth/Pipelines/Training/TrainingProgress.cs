namespace AttnDreamBooth.Pipelines.Training;

/// <summary>A report after each optimizer step of <c>TrainAsync</c>.</summary>
/// <param name="Stage">1, 2 or 3.</param>
/// <param name="StageName">e.g. "textual-inversion", "cross-attention", "unet".</param>
/// <param name="Step">Completed optimizer steps in this stage (1-based).</param>
/// <param name="StageSteps">Total steps of this stage.</param>
/// <param name="GlobalStep">Completed steps over all stages.</param>
/// <param name="TotalSteps">Steps of all stages.</param>
/// <param name="Loss">Total loss of the step (mean over accumulated micro-batches).</param>
/// <param name="MseLoss">The denoising (MSE) part.</param>
/// <param name="AttentionLoss">The attention-map regularization part (already weighted).</param>
/// <param name="LearningRate">The stage's learning rate.</param>
/// <param name="Elapsed">Time since training started (or resumed).</param>
/// <param name="EstimatedRemaining">Estimated time to finish all stages.</param>
public sealed record TrainingProgress(
    int Stage,
    string StageName,
    int Step,
    int StageSteps,
    int GlobalStep,
    int TotalSteps,
    double Loss,
    double MseLoss,
    double AttentionLoss,
    double LearningRate,
    TimeSpan Elapsed,
    TimeSpan? EstimatedRemaining)
{
    /// <summary>Validation images produced at this step, when validation prompts were configured.</summary>
    public IReadOnlyList<Generation.GeneratedImage>? ValidationImages { get; init; }

    /// <summary>Path of the checkpoint written at this step, if one was.</summary>
    public string? CheckpointPath { get; init; }
}
