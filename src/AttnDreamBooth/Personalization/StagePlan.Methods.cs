namespace AttnDreamBooth.Personalization;

// The baselines and ablations as stage plans, and the settings only they use. Presets are built on access, not in
// static initializers: initialization order across the files of a partial type is not defined.
public sealed partial record StagePlan
{
    /// <summary>Optimizer steps of <see cref="Paper"/> (60 + 100 + 500): every preset except <see cref="Fast"/> and the
    /// stage ablations trains for this many steps at batch 8, so methods compare at an equal budget.</summary>
    public const int ReferenceTotalSteps = 660;

    /// <summary>DreamBooth's identifier: a rare token that exists in the CLIP vocabulary and carries little meaning.</summary>
    public const string DreamBoothToken = "sks";

    /// <summary>Textual Inversion's learning rate at batch 8: diffusers' 5e-4 per sample scaled linearly with the batch
    /// (its <c>--scale_lr</c>).</summary>
    public const double TextualInversionLearningRate = 5e-4 * 8;

    /// <summary>DreamBooth's learning rate for Stable Diffusion (DreamBooth paper; diffusers' example).</summary>
    public const double DreamBoothLearningRate = 5e-6;

    /// <summary>
    /// Textual Inversion: only the [V] row (initialised from the category word) is learned, without the attention
    /// regularization: 660 steps at batch 8 and 4e-3. Stages 2 and 3 are off (they keep <see cref="Paper"/>'s numbers).
    /// </summary>
    public static StagePlan TextualInversion => Paper with
    {
        Stage1 = TextualInversionStage(ReferenceTotalSteps),
        Stage2 = Paper.Stage2 with { Enabled = false },
        Stage3 = Paper.Stage3 with { Enabled = false },
    };

    /// <summary>
    /// DreamBooth: the whole U-Net is fine-tuned on "a photo of a sks {category}" — the existing rare token
    /// <see cref="DreamBoothToken"/> with its own embedding, never trained — with the prior-preservation loss (weight 1.0)
    /// on 100 generated class images of "a photo of a {category}": 660 steps at batch 8 (plus 8 class images), 5e-6,
    /// gradient norm clipped to 1 (diffusers' default), no attention regularization.
    /// </summary>
    public static StagePlan DreamBooth => Paper with
    {
        Stage1 = Paper.Stage1 with { Enabled = false },
        Stage2 = Paper.Stage2 with { Enabled = false },
        Stage3 = DreamBoothStage(ReferenceTotalSteps),
        IdentifierToken = DreamBoothToken,
        EmbeddingInitialization = EmbeddingInitialization.IdentifierToken,
        PriorPreservation = new PriorPreservationOptions(),
    };

    /// <summary>
    /// TI+DB: Textual Inversion of a new token (160 steps, as AttnDreamBooth's stages 1 and 2 together), then DreamBooth
    /// fine-tuning of the whole U-Net (500 steps, as AttnDreamBooth's stage 3) in which the token's embedding keeps
    /// training jointly at the fine-tuning learning rate (<see cref="StageOptions.TrainEmbedding"/>), with prior
    /// preservation as <see cref="DreamBooth"/>; no attention regularization.
    /// </summary>
    public static StagePlan TextualInversionDreamBooth => Paper with
    {
        Stage1 = TextualInversionStage(160),
        Stage2 = Paper.Stage2 with { Enabled = false },
        Stage3 = DreamBoothStage(500) with { TrainEmbedding = true },
        PriorPreservation = new PriorPreservationOptions(),
    };

    /// <summary>The preset plan of <paramref name="method"/> (see docs/methods.md for the settings and their sources).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined method.</exception>
    public static StagePlan For(PersonalizationMethod method) => method switch
    {
        PersonalizationMethod.AttnDreamBooth => Paper,
        PersonalizationMethod.AttnDreamBoothFast => Fast,
        PersonalizationMethod.TextualInversion => TextualInversion,
        PersonalizationMethod.DreamBooth => DreamBooth,
        PersonalizationMethod.TextualInversionDreamBooth => TextualInversionDreamBooth,
        PersonalizationMethod.WithoutEmbeddingStage => Paper.Skip(TrainingStage.Embedding),
        PersonalizationMethod.WithoutCrossAttentionStage => Paper.Skip(TrainingStage.CrossAttention),
        PersonalizationMethod.WithoutUNetStage => Paper.Skip(TrainingStage.UNet),
        PersonalizationMethod.WithoutRegularization => Paper with
        {
            Stage1 = Paper.Stage1 with { RegularizationWeights = AttentionRegularizationWeights.None },
            Stage2 = Paper.Stage2 with { RegularizationWeights = AttentionRegularizationWeights.None },
            Stage3 = Paper.Stage3 with { RegularizationWeights = AttentionRegularizationWeights.None },
        },
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown personalization method."),
    };

    /// <summary>
    /// A copy whose enabled stages together run <paramref name="totalSteps"/> optimizer steps, each stage keeping its
    /// share of the current total (largest-remainder rounding, at least one step per enabled stage; the current total
    /// gives the plan back unchanged). Use it to give
    /// several methods the same budget, e.g. on a small model.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="totalSteps"/> is below the number of enabled stages.</exception>
    public StagePlan WithTotalSteps(int totalSteps)
    {
        var stages = EnabledStages;
        if (totalSteps < stages.Count)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, $"Must be at least the number of enabled stages ({stages.Count}).");
        int current = TotalSteps;
        var exact = stages.Select(s => (double)totalSteps * this[s].Steps / current).ToArray();
        var steps = exact.Select(x => Math.Max(1, (int)Math.Floor(x))).ToArray();
        // Hand out what rounding down left over by largest remainder; take back what the one-step minimum added
        // from the longest stages.
        for (int diff = totalSteps - steps.Sum(); diff != 0; diff = totalSteps - steps.Sum())
        {
            var order = Enumerable.Range(0, steps.Length);
            int i = diff > 0
                ? order.OrderByDescending(k => exact[k] - steps[k]).ThenBy(k => k).First()
                : order.Where(k => steps[k] > 1).OrderByDescending(k => steps[k]).ThenBy(k => k).First();
            steps[i] += Math.Sign(diff);
        }
        var plan = this;
        for (int i = 0; i < stages.Count; i++)
        {
            int n = steps[i];
            plan = plan.With(stages[i], s => s with { Steps = n });
        }
        return plan;
    }

    private static StageOptions TextualInversionStage(int steps) => new()
    {
        Steps = steps,
        LearningRate = TextualInversionLearningRate,
        BatchSize = 8,
        RegularizationWeights = AttentionRegularizationWeights.None,
    };

    private static StageOptions DreamBoothStage(int steps) => new()
    {
        Steps = steps,
        LearningRate = DreamBoothLearningRate,
        BatchSize = 8,
        RegularizationWeights = AttentionRegularizationWeights.None,
        PriorLossWeight = 1.0,
        MaxGradNorm = 1.0,
    };

    private void ValidateMethodSettings()
    {
        if (IdentifierToken is { } token && (token.Length == 0 || token.Any(char.IsWhiteSpace) || token.Contains('{') || token.Contains('}')))
            throw new InvalidStagePlanException(null, nameof(IdentifierToken), $"'{token}' must be one non-empty word without whitespace or braces (or null for the concept's token).");
        if (!Enum.IsDefined(EmbeddingInitialization))
            throw new InvalidStagePlanException(null, nameof(EmbeddingInitialization), $"Unknown value {(int)EmbeddingInitialization}.");
        if (Stage1.Enabled && Stage1.PriorLossWeight > 0)
            throw new InvalidStagePlanException(TrainingStage.Embedding, nameof(StageOptions.PriorLossWeight),
                "Must be 0: stage 1 trains only the [V] row and the class prompt does not contain [V], so the term could not act.");
        if (UsesPriorPreservation && PriorPreservation is null)
        {
            var stage = EnabledStages.First(s => this[s].PriorLossWeight > 0);
            throw new InvalidStagePlanException(null, nameof(PriorPreservation),
                $"Stage {(int)stage} has a prior-preservation weight of {this[stage].PriorLossWeight:g} but the plan has no class-image settings; set PriorPreservation (e.g. new PriorPreservationOptions()).");
        }
        PriorPreservation?.Validate();
    }
}
