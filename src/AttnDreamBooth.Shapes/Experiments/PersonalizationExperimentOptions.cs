using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>
/// What <see cref="PersonalizationExperiment.RunAsync"/> compares: concepts × methods on one Shapes model, every trained
/// model judged on the same prompts and seeds. Every method's plan is its preset (<see cref="StagePlan.For"/>) carried
/// over to the Shapes model (<see cref="ShapesPersonalization.Plan"/>), its total steps multiplied by
/// <see cref="StepsScale"/> (<see cref="PlanFor"/> gives the exact plan).
/// </summary>
public sealed record PersonalizationExperimentOptions
{
    /// <summary>The steps scale of <see cref="Quick"/>.</summary>
    public const double QuickStepsScale = 0.15;

    /// <summary>Images per prompt of <see cref="Quick"/>.</summary>
    public const int QuickSeeds = 1;

    /// <summary>Prompts of <see cref="Quick"/>.</summary>
    public const int QuickPrompts = 6;

    /// <summary>Concepts of <see cref="Quick"/>.</summary>
    public const int QuickConcepts = 2;

    /// <summary>Class images of <see cref="Quick"/>.</summary>
    public const int QuickClassImages = 16;

    /// <summary>The Shapes model: a diffusers folder (e.g. samples/models/shapes-sd).</summary>
    public required string ModelFolder { get; init; }

    /// <summary>The concepts, each trained once per method. Tuning concepts (<see cref="ConceptSpec.IsTuning"/>) are run
    /// but kept out of the main tables.</summary>
    public required IReadOnlyList<ConceptSpec> Concepts { get; init; }

    /// <summary>The prompts (e.g. <see cref="ConceptPrompts.Load"/>). A concept skips the prompts whose background it lacks
    /// contrast with (<see cref="ConceptSpec.ContrastsWith"/>): the analyzer could not find it there.</summary>
    public required IReadOnlyList<ConceptPrompt> Prompts { get; init; }

    /// <summary>Receives every output; cells already there with the same settings are reused.</summary>
    public required string OutputFolder { get; init; }

    /// <summary>The world the concepts and prompts belong to.</summary>
    public ShapesWorld World { get; init; } = ShapesWorld.Default;

    /// <summary>The methods compared, in table order (default <see cref="DefaultMethods"/>).</summary>
    public IReadOnlyList<PersonalizationMethod> Methods { get; init; } = DefaultMethods;

    /// <summary>The paper's main comparison: Textual Inversion, DreamBooth, TI+DB and AttnDreamBooth.</summary>
    public static IReadOnlyList<PersonalizationMethod> DefaultMethods { get; } =
    [
        PersonalizationMethod.TextualInversion, PersonalizationMethod.DreamBooth,
        PersonalizationMethod.TextualInversionDreamBooth, PersonalizationMethod.AttnDreamBooth,
    ];

    /// <summary>Images per prompt; image i of every prompt, method and concept uses seed i.</summary>
    public int Seeds { get; init; } = 2;

    /// <summary>Multiplies every plan's total optimizer steps (shared between its stages in proportion; at least one step
    /// per stage). Methods with the same preset budget keep the same budget.</summary>
    public double StepsScale { get; init; } = 1.0;

    /// <summary>When set, stages 2 and 3 of every method train LoRA adapters of this shape on their default layers
    /// (<see cref="StagePlan.WithLora(LoraOptions, double?)"/>) at <see cref="ShapesPersonalization.LoraLearningRate"/>,
    /// instead of fine-tuning the U-Net's weights; null (default) fine-tunes them.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>When set, every cell trains with 8-bit AdamW moments (<see cref="TrainingOptions.EightBitOptimizerStates"/>);
    /// false (default) keeps them in float32. Compare with a run without it in another output folder.</summary>
    public bool EightBitOptimizerStates { get; init; }

    /// <summary>Multiplies the learning rate of the named stages in every method's plan (e.g. stage 2 × 0.1), after the
    /// carry-over to the Shapes model: a diagnostic of how a stage's rate shapes the results, not a tuning of one method.
    /// Compare with a run without it in another output folder. Null or empty (default) changes nothing.</summary>
    public IReadOnlyDictionary<TrainingStage, double>? LearningRateScales { get; init; }

    /// <summary>Seed of every training run (the same for all concepts and methods).</summary>
    public long TrainingSeed { get; init; } = 42;

    /// <summary>Prior-preservation class images per category for the methods that use them (generated once per category
    /// with <see cref="Generation"/>'s sampler settings and cached in the output folder).</summary>
    public int ClassImages { get; init; } = 100;

    /// <summary>Also judge multi-stage methods after each stage but the last (the last is the trained model).</summary>
    public bool StageMetrics { get; init; } = true;

    /// <summary>Sampler settings of every image (batch size, seed and heatmap tokens are set by the experiment).</summary>
    public GenerationOptions Generation { get; init; } = ShapesPersonalization.Generation;

    /// <summary>
    /// The smoke-test version of these options: the first <see cref="QuickConcepts"/> non-tuning concepts of distinct
    /// categories, <see cref="QuickPrompts"/> prompts spread evenly over the list (so every level of complexity stays),
    /// <see cref="QuickSeeds"/> image per prompt, <see cref="QuickStepsScale"/> of the steps and
    /// <see cref="QuickClassImages"/> class images. Methods and everything else stay.
    /// </summary>
    public PersonalizationExperimentOptions Quick()
    {
        var concepts = new List<ConceptSpec>();
        foreach (var c in Concepts.Where(c => !c.IsTuning).Concat(Concepts.Where(c => c.IsTuning)))
        {
            if (concepts.Count < QuickConcepts && concepts.All(k => k.Category != c.Category)) concepts.Add(c);
        }
        var prompts = Prompts.Count <= QuickPrompts
            ? Prompts
            : Enumerable.Range(0, QuickPrompts).Select(i => Prompts[(int)Math.Round(i * (Prompts.Count - 1) / (double)(QuickPrompts - 1))]).ToArray();
        return this with
        {
            Concepts = concepts.Count > 0 ? concepts : Concepts.Take(QuickConcepts).ToArray(),
            Prompts = prompts,
            Seeds = QuickSeeds,
            StepsScale = QuickStepsScale,
            ClassImages = Math.Min(ClassImages, QuickClassImages),
        };
    }

    /// <summary>The plan <paramref name="method"/> trains with: its preset carried over to the Shapes model, the total
    /// steps scaled by <see cref="StepsScale"/>, LoRA stages with <see cref="Lora"/>, prior preservation with <see cref="ClassImages"/> images generated with
    /// <see cref="Generation"/>'s settings, no checkpoints.</summary>
    public StagePlan PlanFor(PersonalizationMethod method)
    {
        var plan = ShapesPersonalization.Plan(StagePlan.For(method)) with { CheckpointInterval = null };
        int steps = Math.Max(plan.EnabledStages.Count, (int)Math.Round(plan.TotalSteps * StepsScale, MidpointRounding.AwayFromZero));
        plan = plan.WithTotalSteps(steps);
        foreach (var (stage, scale) in LearningRateScales ?? new Dictionary<TrainingStage, double>())
            plan = plan.With(stage, s => s with { LearningRate = s.LearningRate * scale });
        if (Lora is { } lora) plan = plan.WithLora(lora, ShapesPersonalization.LoraLearningRate);
        if (plan.PriorPreservation is { } prior)
        {
            plan = plan with
            {
                PriorPreservation = prior with
                {
                    NumClassImages = ClassImages,
                    InferenceSteps = Generation.Steps,
                    GuidanceScale = Generation.GuidanceScale,
                    Sampler = Generation.Sampler,
                },
            };
        }
        return plan;
    }

    /// <summary>Throws for unusable settings.</summary>
    /// <exception cref="ArgumentException">A list is empty, has duplicates (concept names, methods) or an entry is null;
    /// the model folder or output folder is blank.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A number is out of range.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(ModelFolder);
        ArgumentException.ThrowIfNullOrWhiteSpace(OutputFolder);
        ArgumentNullException.ThrowIfNull(World);
        ArgumentNullException.ThrowIfNull(Generation);
        if (Concepts is null || Concepts.Count == 0 || Concepts.Any(c => c is null)) throw new ArgumentException("At least one concept is needed (and none may be null).", nameof(Concepts));
        if (Concepts.Select(c => c.Name).Distinct(StringComparer.OrdinalIgnoreCase).Count() != Concepts.Count)
            throw new ArgumentException("Two concepts have the same name; their outputs would share a folder.", nameof(Concepts));
        foreach (var c in Concepts)
        {
            if (c.Name.Length == 0 || c.Name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || c.Name is "." or "..")
                throw new ArgumentException($"The concept name '{c.Name}' cannot name a folder.", nameof(Concepts));
        }
        if (Prompts is null || Prompts.Count == 0 || Prompts.Any(p => p is null)) throw new ArgumentException("At least one prompt is needed (and none may be null).", nameof(Prompts));
        if (Prompts.Any(p => p.Template.Split("{}").Length != 2)) throw new ArgumentException("Every prompt needs exactly one {} for the concept.", nameof(Prompts));
        if (Methods is null || Methods.Count == 0) throw new ArgumentException("At least one method is needed.", nameof(Methods));
        if (Methods.Distinct().Count() != Methods.Count) throw new ArgumentException("A method is listed twice.", nameof(Methods));
        foreach (var m in Methods)
        {
            if (!Enum.IsDefined(m)) throw new ArgumentOutOfRangeException(nameof(Methods), m, "Unknown personalization method.");
        }
        if (Seeds is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(Seeds), Seeds, "must be between 1 and 64");
        if (!(StepsScale > 0 && StepsScale <= 100)) throw new ArgumentOutOfRangeException(nameof(StepsScale), StepsScale, "must be in (0, 100]");
        if (ClassImages is < 1 or > PriorPreservationOptions.MaxClassImages)
            throw new ArgumentOutOfRangeException(nameof(ClassImages), ClassImages, $"must be between 1 and {PriorPreservationOptions.MaxClassImages}");
        foreach (var (stage, scale) in LearningRateScales ?? new Dictionary<TrainingStage, double>())
        {
            if (!Enum.IsDefined(stage)) throw new ArgumentOutOfRangeException(nameof(LearningRateScales), stage, "Unknown training stage.");
            if (!(scale > 0 && scale <= 1e3)) throw new ArgumentOutOfRangeException(nameof(LearningRateScales), scale, $"stage {(int)stage}'s scale must be in (0, 1000]");
        }
        Generation.Validate();
        foreach (var m in Methods) PlanFor(m).Validate();
    }
}
