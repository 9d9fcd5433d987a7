using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A progress report of a training run, sent after every optimizer step.
/// </summary>
/// <param name="Stage">The running stage.</param>
/// <param name="Step">Optimizer steps completed in this stage (1-based after the first step).</param>
/// <param name="StageSteps">Optimizer steps of this stage.</param>
/// <param name="GlobalStep">Optimizer steps completed over all enabled stages.</param>
/// <param name="TotalSteps">Optimizer steps of all enabled stages.</param>
/// <param name="Loss">The step's total loss (MSE + attention regularization + prior weight × <see cref="PriorLoss"/>),
/// averaged over accumulation passes.</param>
/// <param name="MseLoss">The step's diffusion (MSE) part.</param>
/// <param name="AttentionLoss">The step's attention-regularization part.</param>
/// <param name="LearningRate">The learning rate used for the step.</param>
/// <param name="Elapsed">Wall-clock time since training started (or resumed).</param>
/// <param name="EstimatedRemaining">Estimated time to finish all stages, or null before it can be estimated.</param>
public sealed record TrainingProgress(
    TrainingStage Stage,
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
    /// <summary>Fraction of all steps done, in [0, 1].</summary>
    public double Fraction => TotalSteps == 0 ? 1.0 : (double)GlobalStep / TotalSteps;

    /// <summary>Validation images rendered at this step, when validation prompts were configured.</summary>
    public IReadOnlyList<GeneratedImage>? ValidationImages { get; init; }

    /// <summary>The step's prior-preservation part before weighting: the diffusion loss on the class images (0 when the
    /// stage has no prior-preservation weight).</summary>
    public double PriorLoss { get; init; }

    /// <summary>At the last step of every stage: the concept's embedding rows as the stage left them ([tokens × hidden size],
    /// row by row, float32); null at other steps. Comparing stage ends (and the rows training started from) shows how far
    /// each stage moved the embedding: stage 1 always trains it, stages 2 and 3 only with
    /// <see cref="StageOptions.TrainEmbedding"/>.</summary>
    public IReadOnlyList<float>? StageEndEmbedding { get; init; }

    /// <summary>The checkpoint written at this step, if one was.</summary>
    public string? CheckpointPath { get; init; }
}
