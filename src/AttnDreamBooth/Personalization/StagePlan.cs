using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The three stages of an AttnDreamBooth run and their settings. <see cref="Paper"/> reproduces the official
/// implementation's numbers; <see cref="Fast"/> is its published fast variant (shorter stage 3). Every number can be
/// changed, and any stage skipped or re-weighted:
/// <code>
/// var plan = StagePlan.Paper
///     .With(TrainingStage.UNet, s => s with { Steps = 300, MaxGradNorm = 1.0 })
///     .WithRegularization(TrainingStage.CrossAttention, new AttentionRegularizationWeights(1, 2))
///     .Skip(TrainingStage.Embedding);
/// </code>
/// </summary>
public sealed partial record StagePlan
{
    // Declared first: static initializers run in text order and the presets below are built from it indirectly.
    private static readonly TrainingStage[] AllStages = [TrainingStage.Embedding, TrainingStage.CrossAttention, TrainingStage.UNet];

    /// <summary>Every stage of the method, in training order (enabled or not); <see cref="EnabledStages"/> lists those a
    /// plan runs.</summary>
    public static IReadOnlyList<TrainingStage> Stages => AllStages;

    /// <summary>The official numbers (train_attndreambooth.sh): stage 1 60 steps at 1e-3, stage 2 100 steps at 2e-5,
    /// stage 3 500 steps at 2e-6, batch 8 everywhere, regularization (0.1, 0) then (2, 5) and (2, 5), AdamW
    /// (0.9, 0.999, wd 1e-2, eps 1e-8), constant learning rate, no gradient clipping.</summary>
    public static StagePlan Paper { get; } = new()
    {
        Stage1 = new StageOptions { Steps = 60, LearningRate = 1e-3, BatchSize = 8, RegularizationWeights = AttentionRegularizationWeights.EmbeddingStage },
        Stage2 = new StageOptions { Steps = 100, LearningRate = 2e-5, BatchSize = 8, RegularizationWeights = AttentionRegularizationWeights.FineTuningStage },
        Stage3 = new StageOptions { Steps = 500, LearningRate = 2e-6, BatchSize = 8, RegularizationWeights = AttentionRegularizationWeights.FineTuningStage },
    };

    /// <summary>The official fast variant: as <see cref="Paper"/>, but stage 3 runs 200 steps at 1e-5 with batch 4.</summary>
    public static StagePlan Fast { get; } = Paper with
    {
        Stage3 = Paper.Stage3 with { Steps = 200, LearningRate = 1e-5, BatchSize = 4 },
    };

    /// <summary>Stage 1: the [V] embedding row.</summary>
    public required StageOptions Stage1 { get; init; }

    /// <summary>Stage 2: the U-Net's cross-attention projections (or LoRA adapters on them, <see cref="StageOptions.Lora"/>).</summary>
    public required StageOptions Stage2 { get; init; }

    /// <summary>Stage 3: the whole U-Net (or LoRA adapters on its layers, <see cref="StageOptions.Lora"/>).</summary>
    public required StageOptions Stage3 { get; init; }

    /// <summary>Write a checkpoint every this many optimizer steps within a stage (checkpoints are also written at the
    /// end of every stage); null writes them only at stage ends. Default 50. Only used when training is given a
    /// checkpoint folder.</summary>
    public int? CheckpointInterval { get; init; } = 50;

    /// <summary>The identifier token training uses instead of <see cref="Concept.Token"/>; null (default) keeps the
    /// concept's. DreamBooth sets an existing rare token ("sks").</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public string? IdentifierToken { get; init; }

    /// <summary>Where the [V] row starts: the category word's embedding (default) or, for an existing token, its own.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public EmbeddingInitialization EmbeddingInitialization { get; init; }

    /// <summary>Class-image settings of the prior-preservation loss, used by stages whose
    /// <see cref="StageOptions.PriorLossWeight"/> is above 0; null (default) when no stage uses it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public PriorPreservationOptions? PriorPreservation { get; init; }

    /// <summary>Whether an enabled stage adds the prior-preservation loss (so class images are needed).</summary>
    [JsonIgnore]
    public bool UsesPriorPreservation => EnabledStages.Any(s => this[s].PriorLossWeight > 0);

    /// <summary>The options of <paramref name="stage"/>.</summary>
    [JsonIgnore]
    public StageOptions this[TrainingStage stage] => stage switch
    {
        TrainingStage.Embedding => Stage1,
        TrainingStage.CrossAttention => Stage2,
        TrainingStage.UNet => Stage3,
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "Unknown training stage."),
    };

    /// <summary>The stages that run, in order.</summary>
    [JsonIgnore]
    public IReadOnlyList<TrainingStage> EnabledStages =>
        AllStages.Where(s => this[s].Enabled).ToArray();

    /// <summary>Whether <paramref name="stage"/> trains the concept's embedding rows: stage 1 always, stages 2 and 3 when
    /// their <see cref="StageOptions.TrainEmbedding"/> says so.</summary>
    internal bool TrainsEmbedding(TrainingStage stage) => stage == TrainingStage.Embedding || this[stage].TrainEmbedding;

    /// <summary>Optimizer steps over all enabled stages.</summary>
    [JsonIgnore]
    public int TotalSteps => EnabledStages.Sum(s => this[s].Steps);

    /// <summary>The plan as indented JSON with snake_case property names and enum values (<c>stage1</c>,
    /// <c>learning_rate</c>, <c>lora_modules: "cross_attention"</c>), as in a saved concept's metadata.</summary>
    public string ToJson() => JsonFiles.Serialize(this);

    /// <summary>Reads a plan written by <see cref="ToJson"/> and validates it. Property names and enum values may also be
    /// spelt as the C# API spells them (PascalCase or camelCase), as earlier versions wrote them.</summary>
    /// <exception cref="InvalidStagePlanException">The JSON is malformed, misses a stage, or holds an invalid setting.</exception>
    public static StagePlan FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        StagePlan? plan;
        try
        {
            plan = JsonFiles.Deserialize<StagePlan>(json);
        }
        catch (JsonException e)
        {
            throw new InvalidStagePlanException(null, "json", $"Not a valid stage plan: {e.Message}");
        }
        if (plan is null) throw new InvalidStagePlanException(null, "json", "The JSON holds null.");
        plan.Validate();
        return plan;
    }

    /// <summary>A copy with <paramref name="stage"/>'s options replaced by <paramref name="change"/>(current options).</summary>
    public StagePlan With(TrainingStage stage, Func<StageOptions, StageOptions> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        var updated = change(this[stage]) ?? throw new ArgumentException("The change returned null.", nameof(change));
        return stage switch
        {
            TrainingStage.Embedding => this with { Stage1 = updated },
            TrainingStage.CrossAttention => this with { Stage2 = updated },
            TrainingStage.UNet => this with { Stage3 = updated },
            _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "Unknown training stage."),
        };
    }

    /// <summary>A copy in which <paramref name="stage"/> does not run.</summary>
    public StagePlan Skip(TrainingStage stage) => With(stage, s => s with { Enabled = false });

    /// <summary>A copy with other regularization weights for <paramref name="stage"/>.</summary>
    public StagePlan WithRegularization(TrainingStage stage, AttentionRegularizationWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return With(stage, s => s with { RegularizationWeights = weights });
    }

    /// <summary>A copy with the given step counts (e.g. a few steps each for a smoke test).</summary>
    public StagePlan WithSteps(int stage1, int stage2, int stage3) =>
        this with { Stage1 = Stage1 with { Steps = stage1 }, Stage2 = Stage2 with { Steps = stage2 }, Stage3 = Stage3 with { Steps = stage3 } };

    /// <summary>A copy with the step count of each stage in <see cref="Stages"/> order, where 0 skips the stage (its other
    /// settings, step count included, are kept), as the CLI's <c>--steps 60,0,200</c> reads.</summary>
    /// <exception cref="ArgumentException">Not one count per stage.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is negative.</exception>
    public StagePlan WithStepsOrSkip(IReadOnlyList<int> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Count != AllStages.Length)
            throw new ArgumentException($"Expected {AllStages.Length} step counts (one per stage); got {steps.Count}.", nameof(steps));
        var plan = this;
        for (int i = 0; i < AllStages.Length; i++)
        {
            int count = steps[i];
            ArgumentOutOfRangeException.ThrowIfNegative(count, nameof(steps));
            plan = count == 0 ? plan.Skip(AllStages[i]) : plan.With(AllStages[i], s => s with { Steps = count });
        }
        return plan;
    }

    /// <summary>A copy with the same batch size in every stage.</summary>
    public StagePlan WithBatchSize(int batchSize) =>
        this with { Stage1 = Stage1 with { BatchSize = batchSize }, Stage2 = Stage2 with { BatchSize = batchSize }, Stage3 = Stage3 with { BatchSize = batchSize } };

    /// <summary>
    /// Checks every setting of every enabled stage and of the plan; throws <see cref="InvalidStagePlanException"/>
    /// naming the first invalid one. Settings of skipped stages are not checked.
    /// </summary>
    public void Validate()
    {
        if (Stage1 is null || Stage2 is null || Stage3 is null)
        {
            var missing = Stage1 is null ? TrainingStage.Embedding : Stage2 is null ? TrainingStage.CrossAttention : TrainingStage.UNet;
            throw new InvalidStagePlanException(missing, "options", "The stage's options are null.");
        }
        if (EnabledStages.Count == 0)
            throw new InvalidStagePlanException(null, "stages", "Every stage is skipped; at least one stage must run.");
        if (CheckpointInterval is < 1)
            throw new InvalidStagePlanException(null, nameof(CheckpointInterval), $"Must be null (checkpoints at stage ends only) or ≥ 1; got {CheckpointInterval}.");
        foreach (var stage in EnabledStages) ValidateStage(stage, this[stage]);
        ValidateLoraAcrossStages();
        ValidateMethodSettings();
    }

    private static void ValidateStage(TrainingStage stage, StageOptions s)
    {
        if (s.Steps < 1)
            Fail(stage, nameof(s.Steps), $"Must be ≥ 1 (skip the stage instead of giving it 0 steps); got {s.Steps}.");
        PositiveFinite(stage, nameof(s.LearningRate), s.LearningRate);
        if (s.BatchSize < 1)
            Fail(stage, nameof(s.BatchSize), $"Must be ≥ 1; got {s.BatchSize}.");
        if (s.GradientAccumulationSteps < 1)
            Fail(stage, nameof(s.GradientAccumulationSteps), $"Must be ≥ 1; got {s.GradientAccumulationSteps}.");
        if (s.RegularizationWeights is null)
            Fail(stage, nameof(s.RegularizationWeights), "Must not be null (use AttentionRegularizationWeights.None to turn the term off).");
        NonNegativeFinite(stage, "RegularizationWeights.Mean", s.RegularizationWeights!.Mean);
        NonNegativeFinite(stage, "RegularizationWeights.Variance", s.RegularizationWeights.Variance);
        var o = s.Optimizer ?? throw new InvalidStagePlanException(stage, nameof(s.Optimizer), "Must not be null.");
        if (!double.IsFinite(o.Beta1) || o.Beta1 < 0 || o.Beta1 >= 1)
            Fail(stage, "Optimizer.Beta1", $"Must be in [0, 1); got {Format(o.Beta1)}.");
        if (!double.IsFinite(o.Beta2) || o.Beta2 < 0 || o.Beta2 >= 1)
            Fail(stage, "Optimizer.Beta2", $"Must be in [0, 1); got {Format(o.Beta2)}.");
        NonNegativeFinite(stage, "Optimizer.WeightDecay", o.WeightDecay);
        PositiveFinite(stage, "Optimizer.Epsilon", o.Epsilon);
        if (s.MaxGradNorm is double norm) PositiveFinite(stage, nameof(s.MaxGradNorm), norm, " (or null for no clipping)");
        NonNegativeFinite(stage, nameof(s.PriorLossWeight), s.PriorLossWeight);
        ValidateLora(stage, s);
    }

    private static void PositiveFinite(TrainingStage stage, string setting, double value, string extra = "")
    {
        if (!double.IsFinite(value) || value <= 0) Fail(stage, setting, $"Must be a finite number > 0{extra}; got {Format(value)}.");
    }

    private static void NonNegativeFinite(TrainingStage stage, string setting, double value)
    {
        if (!double.IsFinite(value) || value < 0) Fail(stage, setting, $"Must be a finite number ≥ 0; got {Format(value)}.");
    }

    private static void Fail(TrainingStage stage, string setting, string problem) => throw new InvalidStagePlanException(stage, setting, problem);

    private static string Format(double value) => value.ToString("g", CultureInfo.InvariantCulture);

}
