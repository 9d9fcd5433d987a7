using System.Text.Json.Serialization;
using AttnDreamBooth.Models.Lora;
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

    /// <summary>Stages 2 and 3 only: train LoRA adapters of this shape (rank, alpha, dropout) on the U-Net layers
    /// <see cref="LoraModules"/> names instead of the stage's own U-Net weights, which stay frozen. Null (the default)
    /// fine-tunes the weights, as the official method does. The regularization and the attention-map recording work
    /// unchanged: the adapters act through forward hooks below the attention processors. When stages 2 and 3 both use LoRA
    /// they train one set of adapters (stage 3 continues stage 2's), so their rank, alpha and dropout must be equal. A
    /// concept trained with LoRA in every U-Net stage is saved as its embedding plus a LoRA file. LoRA adapters usually
    /// need a larger <see cref="LearningRate"/> than full fine-tuning (diffusers' DreamBooth-LoRA example uses 1e-4).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public LoraOptions? Lora { get; init; }

    /// <summary>The U-Net layers that carry the adapters when <see cref="Lora"/> is set. <see cref="LoraUNetModules.None"/>
    /// (the default) means the stage's own layers: stage 2 <see cref="LoraUNetModules.CrossAttention"/> (the <c>attn2</c>
    /// projections it fine-tunes), stage 3 <see cref="LoraUNetModules.Transformer"/> (attention, feed-forward and the
    /// transformer projections; <see cref="LoraUNetModules.All"/> adds the ResNet convolutions).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    [JsonConverter(typeof(JsonStringEnumConverter<LoraUNetModules>))]
    public LoraUNetModules LoraModules { get; init; }

    /// <summary>Stages 2 and 3 only: also train the concept's embedding rows in this stage, jointly with the stage's U-Net
    /// weights (or adapters) and at its <see cref="LearningRate"/> (one optimizer, one gradient-norm clip over both), as
    /// two-stage recipes such as Break-A-Scene's do. False (the default, and the official method) keeps the embedding as
    /// the stages before left it. Stage 1 trains the embedding whatever this says. A stage that trains the embedding runs
    /// the text encoder in every step (its conditioning cannot be computed once), and the text encoder is not released
    /// before it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool TrainEmbedding { get; init; }

    /// <summary>Samples that contribute to one optimizer step.</summary>
    [JsonIgnore]
    public int EffectiveBatchSize => BatchSize * GradientAccumulationSteps;
}
