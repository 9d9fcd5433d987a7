using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Evaluation;

/// <summary>
/// How a concept is evaluated: the prompts (with the <c>{}</c> generation placeholder), images per prompt, seeds and the
/// sampler settings. <see cref="Paper(SubjectKind)"/> is the AttnDreamBooth protocol: the DreamBooth dataset prompt list for the
/// concept's kind, DPM-Solver++ (multistep) with 50 steps and guidance 7.5, 16 images per prompt, the seed reset for
/// every prompt (as the official inference code), CLIP ViT-B/32 for the scores.
/// </summary>
public sealed record EvaluationProtocol
{
    /// <summary>Prompts with the <c>{}</c> placeholder ("[V] category").</summary>
    public required IReadOnlyList<string> Prompts { get; init; }

    /// <summary>Images generated per prompt.</summary>
    public int ImagesPerPrompt { get; init; } = 16;

    /// <summary>The diffusers scheduler class the generation uses.</summary>
    public string Sampler { get; init; } = "DPMSolverMultistepScheduler";

    /// <summary>Denoising steps.</summary>
    public int InferenceSteps { get; init; } = 50;

    /// <summary>Classifier-free guidance scale.</summary>
    public double GuidanceScale { get; init; } = 7.5;

    /// <summary>The seed schedule: image <c>i</c> of EVERY prompt starts from the noise of seed <c>Seed + i</c> (the
    /// generator is reset for each prompt, as the official inference does), whatever the generation batch size. Two
    /// evaluations with the same seed, model and settings therefore see the same initial noise.</summary>
    public long Seed { get; init; }

    /// <summary>The CLIP model the scores were reported with (Hugging Face id).</summary>
    public string ClipModel { get; init; } = "openai/clip-vit-base-patch32";

    /// <summary>The paper's protocol for a concept of <paramref name="category"/> (e.g. "dog" → live-subject prompts).</summary>
    public static EvaluationProtocol Paper(string category) => Paper(DreamBoothPrompts.KindOf(category));

    /// <summary>The paper's protocol for a subject kind.</summary>
    internal static EvaluationProtocol Paper(SubjectKind kind) => new() { Prompts = DreamBoothPrompts.For(kind) };

    /// <summary>The paper's settings with the prompts of a DreamBooth dataset <c>prompts_and_classes.txt</c> for
    /// <paramref name="category"/>: the live-subject list for dogs, cats and other animals, the object list otherwise.</summary>
    /// <exception cref="FormatException">The text is not in that file's format.</exception>
    public static EvaluationProtocol FromPromptFile(string text, string category)
    {
        var parsed = DreamBoothPrompts.Parse(text);
        return WithPrompts(DreamBoothPrompts.KindOf(category) == SubjectKind.LiveSubject ? parsed.LiveSubjectPrompts : parsed.ObjectPrompts);
    }

    /// <summary>The paper's settings with the user's own prompts.</summary>
    /// <exception cref="ArgumentException">No prompts, or a prompt without <c>{}</c>.</exception>
    public static EvaluationProtocol WithPrompts(IReadOnlyList<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0) throw new ArgumentException("At least one prompt is needed.", nameof(prompts));
        var bad = prompts.FirstOrDefault(p => !p.Contains("{}", StringComparison.Ordinal));
        if (bad is not null) throw new ArgumentException($"The prompt '{bad}' has no {{}} placeholder for the concept.", nameof(prompts));
        return new EvaluationProtocol { Prompts = prompts };
    }

    /// <summary>The generation sampler name of <see cref="Sampler"/> (<c>DPMSolverMultistepScheduler</c> or
    /// <c>DDIMScheduler</c>).</summary>
    /// <exception cref="ArgumentException">Another scheduler class.</exception>
    internal string SamplerName => Sampler switch
    {
        "DPMSolverMultistepScheduler" => "dpm++",
        "DDIMScheduler" => "ddim",
        _ => throw new ArgumentException($"The evaluation sampler '{Sampler}' is not supported; use DPMSolverMultistepScheduler or DDIMScheduler.", nameof(Sampler)),
    };

    /// <summary>The generation settings of images <paramref name="firstImage"/> .. <paramref name="firstImage"/> +
    /// <paramref name="count"/> − 1 of a prompt: the protocol's sampler, steps and guidance, seed <c>Seed + firstImage</c>.</summary>
    public GenerationOptions GenerationOptions(int firstImage, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstImage);
        return new GenerationOptions
        {
            Steps = InferenceSteps,
            GuidanceScale = GuidanceScale,
            Sampler = SamplerName,
            Seed = Seed + firstImage,
            BatchSize = count,
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> for an unusable protocol (no prompts, a prompt without <c>{}</c>,
    /// no images per prompt, an unsupported sampler or invalid sampling settings).</summary>
    public void Validate()
    {
        if (Prompts is not { Count: > 0 }) throw new ArgumentException("The protocol has no prompts.", nameof(Prompts));
        if (Prompts.Any(p => p is null)) throw new ArgumentException("The protocol's prompt list contains null.", nameof(Prompts));
        var bad = Prompts.FirstOrDefault(p => !p.Contains("{}", StringComparison.Ordinal));
        if (bad is not null) throw new ArgumentException($"The prompt '{bad}' has no {{}} placeholder for the concept.", nameof(Prompts));
        if (ImagesPerPrompt < 1) throw new ArgumentOutOfRangeException(nameof(ImagesPerPrompt), ImagesPerPrompt, "must be at least 1");
        GenerationOptions(0, 1).Validate();
    }

    /// <summary>The generation prompts for a concept (<c>{}</c> → "<paramref name="identifier"/> <paramref name="category"/>").</summary>
    public IReadOnlyList<string> ExpandPrompts(string identifier, string category) =>
        Prompts.Select(p => DreamBoothPrompts.Expand(p, identifier, category)).ToArray();
}
