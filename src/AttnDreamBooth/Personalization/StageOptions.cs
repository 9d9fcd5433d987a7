using System.Text.Json.Serialization;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The settings of one training stage. Immutable: derive variants with <c>with</c>, e.g.
/// <c>StagePlan.Paper.Stage3 with { Steps = 300 }</c>.
/// </summary>
public sealed record StageOptions
{
    /// <summary>Whether the stage runs. A skipped stage leaves its parameters as the previous stage left them.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Optimizer steps (each over <see cref="BatchSize"/> × <see cref="GradientAccumulationSteps"/> samples), ≥ 1.</summary>
    public required int Steps { get; init; }

    /// <summary>Constant AdamW learning rate, finite and &gt; 0.</summary>
    public required double LearningRate { get; init; }

    /// <summary>Samples per forward/backward pass, ≥ 1. The attention regularization is summed over the batch, so its
    /// weight relative to the MSE grows with the batch size (as in the official code).</summary>
    public required int BatchSize { get; init; }

    /// <summary>Forward/backward passes whose gradients are summed (each loss divided by this number) before one
    /// optimizer step, ≥ 1. Default 1.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Weights (w_mean, w_var) of the cross-attention map regularization in this stage.</summary>
    public required AttentionRegularizationWeights RegularizationWeights { get; init; }

    /// <summary>AdamW settings. Default: <see cref="AdamWOptions.Default"/>.</summary>
    public AdamWOptions Optimizer { get; init; } = AdamWOptions.Default;

    /// <summary>Clip the global L2 norm of this stage's trained parameters' gradients to this value before each step;
    /// null (the default, and the official behaviour) disables clipping.</summary>
    public double? MaxGradNorm { get; init; }

    /// <summary>Weight of the prior-preservation loss in this stage (diffusers' <c>prior_loss_weight</c>; DreamBooth uses
    /// 1.0): each step adds this × the diffusion loss on a batch of generated class images. Finite and ≥ 0; default 0
    /// (off). Above 0 the plan needs <see cref="StagePlan.PriorPreservation"/>; not allowed in stage 1, where only the
    /// [V] row trains and the class prompt does not contain it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double PriorLossWeight { get; init; }

    /// <summary>Samples that contribute to one optimizer step.</summary>
    [JsonIgnore]
    public int EffectiveBatchSize => BatchSize * GradientAccumulationSteps;
}
