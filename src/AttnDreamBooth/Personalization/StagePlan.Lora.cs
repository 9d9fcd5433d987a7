using AttnDreamBooth.Models.Lora;

namespace AttnDreamBooth.Personalization;

// LoRA training in stages 2 and 3: the settings live on StageOptions (Lora, LoraModules); these are the plan-level
// helpers and the rules that span two stages.
public sealed partial record StagePlan
{
    /// <summary>
    /// A copy in which stages 2 and 3 train LoRA adapters of shape <paramref name="options"/> on their own layers (stage 2
    /// the <c>attn2</c> projections, stage 3 attention, feed-forward and transformer projections) instead of fine-tuning
    /// the U-Net's weights, optionally at another <paramref name="learningRate"/> (adapters usually need a larger one than
    /// full fine-tuning; null keeps the plan's). Skipped stages stay skipped.
    /// </summary>
    /// <example><code>var plan = StagePlan.Paper.WithLora(new LoraOptions(Rank: 4), learningRate: 1e-4);</code></example>
    public StagePlan WithLora(LoraOptions options, double? learningRate = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var plan = WithLora(TrainingStage.CrossAttention, options).WithLora(TrainingStage.UNet, options);
        return learningRate is { } lr
            ? plan.With(TrainingStage.CrossAttention, s => s with { LearningRate = lr }).With(TrainingStage.UNet, s => s with { LearningRate = lr })
            : plan;
    }

    /// <summary>A copy in which <paramref name="stage"/> (2 or 3) trains LoRA adapters of shape <paramref name="options"/> on
    /// <paramref name="modules"/> (<see cref="LoraUNetModules.None"/>: the stage's own layers) instead of fine-tuning the
    /// U-Net's weights. See <see cref="StageOptions.Lora"/>.</summary>
    public StagePlan WithLora(TrainingStage stage, LoraOptions options, LoraUNetModules modules = LoraUNetModules.None)
    {
        ArgumentNullException.ThrowIfNull(options);
        return With(stage, s => s with { Lora = options, LoraModules = modules });
    }

    /// <summary>The U-Net layers a LoRA stage's adapters sit on: the stage's own setting, or its default.</summary>
    internal static LoraUNetModules LoraModulesOf(TrainingStage stage, StageOptions options) =>
        options.LoraModules != LoraUNetModules.None ? options.LoraModules
        : stage == TrainingStage.CrossAttention ? LoraUNetModules.CrossAttention
        : LoraUNetModules.Transformer;

    /// <summary>Whether an enabled stage trains LoRA adapters.</summary>
    internal bool UsesLora => EnabledStages.Any(s => this[s].Lora is not null);

    /// <summary>Whether the trained U-Net is the base plus LoRA adapters only: some enabled stage changes the U-Net and every
    /// such stage uses LoRA (the concept is then saved as its embedding plus a LoRA file).</summary>
    internal bool TrainsLoraOnly
    {
        get
        {
            var unetStages = EnabledStages.Where(s => s != TrainingStage.Embedding).ToArray();
            return unetStages.Length > 0 && unetStages.All(s => this[s].Lora is not null);
        }
    }

    private static void ValidateLora(TrainingStage stage, StageOptions s)
    {
        if (s.Lora is not { } lora)
        {
            if (s.LoraModules != LoraUNetModules.None)
                Fail(stage, nameof(s.LoraModules), $"Is {s.LoraModules} but {nameof(s.Lora)} is null; set {nameof(s.Lora)} to train adapters (or leave LoraModules at None).");
            return;
        }
        if (stage == TrainingStage.Embedding)
            Fail(stage, nameof(s.Lora), "Must be null: stage 1 trains only the [V] row; LoRA adapters replace the U-Net fine-tuning of stages 2 and 3.");
        try
        {
            lora.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            Fail(stage, $"{nameof(s.Lora)}.{e.ParamName}", e.Message.Split(" (Parameter", 2)[0]);
        }
        if ((s.LoraModules & ~LoraUNetModules.All) != 0)
            Fail(stage, nameof(s.LoraModules), $"Unknown module groups {(int)s.LoraModules}.");
    }

    private void ValidateLoraAcrossStages()
    {
        if (!Stage2.Enabled || !Stage3.Enabled || Stage2.Lora is not { } second || Stage3.Lora is not { } third) return;
        if (second.Rank != third.Rank || second.Alpha != third.Alpha || second.Dropout != third.Dropout)
            Fail(TrainingStage.UNet, nameof(StageOptions.Lora),
                $"Must have stage 2's rank, alpha and dropout ({Describe(second)}); got {Describe(third)}. Stages 2 and 3 train one set of adapters, stage 3 continuing stage 2's.");

        static string Describe(LoraOptions o) => $"rank {o.Rank}, alpha {(o.Alpha is { } a ? Format(a) : "= rank")}, dropout {Format(o.Dropout)}";
    }
}
