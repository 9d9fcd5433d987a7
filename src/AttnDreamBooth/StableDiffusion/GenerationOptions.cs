using AttnDreamBooth.Schedulers;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>Options for text-to-image generation. Defaults follow the official AttnDreamBooth inference:
/// DPM-Solver++, 50 steps, guidance 7.5.</summary>
public sealed record GenerationOptions
{
    /// <summary>What the image should not show (empty: unconditional guidance).</summary>
    public string NegativePrompt { get; init; } = "";

    /// <summary>Classifier-free guidance scale; 1 disables guidance.</summary>
    public double GuidanceScale { get; init; } = 7.5;

    /// <summary>Number of denoising steps.</summary>
    public int Steps { get; init; } = 50;

    /// <summary>The sampler by name: one of <see cref="DiffusionSamplers.Names"/> (e.g. <c>dpm++</c>, <c>ddim</c>,
    /// <c>euler-a</c>, <c>unipc</c>; <c>-karras</c> appended for Karras sigmas where the sampler has them) or a diffusers
    /// class name such as <c>EulerDiscreteScheduler</c>. Null (the default): the class <see cref="SchedulerConfig"/>
    /// names when that is set, else DPM-Solver++ (<c>dpm++</c>).</summary>
    public string? Sampler { get; init; }

    /// <summary>A scheduler config to build the sampler from instead of the model's (diffusers <c>from_config</c>): with
    /// <see cref="Sampler"/>, that sampler from this config; alone, the class this config names.</summary>
    public SchedulerConfig? SchedulerConfig { get; init; }

    /// <summary>Called on the generation thread after every denoising step with the latents and timestep (diffusers'
    /// <c>callback_on_step_end</c>), e.g. to decode a preview; the images do not depend on it. An exception it throws ends
    /// the generation.</summary>
    public Action<GenerationStep>? OnStep { get; init; }

    /// <summary>DDIM's eta (0 = deterministic); ignored by DPM-Solver++.</summary>
    public double Eta { get; init; }

    /// <summary>Seed of the initial noise; image i of a batch uses seed <c>Seed + i</c>, so an image does not depend on the batch size.</summary>
    public long Seed { get; init; }

    /// <summary>Images per prompt.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Image width in pixels (null: the model's default resolution). Must be a multiple of the VAE factor.</summary>
    public int? Width { get; init; }

    /// <summary>Image height in pixels (null: the model's default resolution).</summary>
    public int? Height { get; init; }

    /// <summary>Tokens whose cross-attention heatmaps to return (e.g. the concept identifier). Empty: none.
    /// A token given as "{}" or the concept identifier means the learned token (its map is stored under the identifier). A
    /// token the prompt does not contain gets no map: <see cref="GeneratedImage.Heatmaps"/> has no entry for it.</summary>
    public IReadOnlyList<string> HeatmapTokens { get; init; } = [];

    /// <summary>Side length of the heatmap grid the layer maps are resized to before averaging.</summary>
    public int HeatmapResolution { get; init; } = 16;

    /// <summary>The options a generation call runs with: <paramref name="options"/> or the defaults, validated, for a non-null
    /// <paramref name="prompt"/>.</summary>
    internal static GenerationOptions ForCall(string prompt, GenerationOptions? options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= new GenerationOptions();
        options.Validate();
        return options;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for unusable values and <see cref="SchedulerException"/>
    /// for an unknown sampler name.</summary>
    public void Validate()
    {
        if (Steps < 1 || Steps > 1000) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "must be between 1 and 1000");
        if (!(GuidanceScale >= 0) || double.IsInfinity(GuidanceScale)) throw new ArgumentOutOfRangeException(nameof(GuidanceScale), GuidanceScale, "must be a finite number ≥ 0");
        if (BatchSize < 1 || BatchSize > 64) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be between 1 and 64");
        if (Width is < 8 or > 4096) throw new ArgumentOutOfRangeException(nameof(Width), Width, "must be between 8 and 4096");
        if (Height is < 8 or > 4096) throw new ArgumentOutOfRangeException(nameof(Height), Height, "must be between 8 and 4096");
        if (!(Eta >= 0 && Eta <= 1)) throw new ArgumentOutOfRangeException(nameof(Eta), Eta, "must be in [0, 1]");
        if (HeatmapResolution is < 1 or > 512) throw new ArgumentOutOfRangeException(nameof(HeatmapResolution), HeatmapResolution, "must be between 1 and 512");
        ArgumentNullException.ThrowIfNull(NegativePrompt);
        ArgumentNullException.ThrowIfNull(HeatmapTokens);
        if (Sampler is not null) DiffusionSamplers.Resolve(Sampler);
        if (Sampler is null && SchedulerConfig is { Class: SchedulerClass.Other } other)
            throw SchedulerException.UnknownSampler(other.ClassName ?? "(no _class_name)", $"{other.SourcePath} names a scheduler class that is not implemented; set Sampler");
    }
}
