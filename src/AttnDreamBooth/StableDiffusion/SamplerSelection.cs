using AttnDreamBooth.Schedulers;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>Turns <see cref="GenerationOptions"/>' sampler choice into a sampler built from a scheduler config.</summary>
internal static class SamplerSelection
{
    /// <summary>The sampler when neither <see cref="GenerationOptions.Sampler"/> nor a scheduler config of the options
    /// names one: DPM-Solver++ (multistep, order 2), as diffusers' Stable Diffusion pipelines are usually run.</summary>
    public const string DefaultSampler = "dpm++";

    /// <summary>
    /// The config is <see cref="GenerationOptions.SchedulerConfig"/> or else the model's. The sampler is
    /// <see cref="GenerationOptions.Sampler"/> when given; else the class the options' own config names when one is
    /// given; else <see cref="DefaultSampler"/>.
    /// </summary>
    public static IDiffusionSampler Create(GenerationOptions options, SchedulerConfig modelConfig)
    {
        var config = options.SchedulerConfig ?? modelConfig;
        if (options.Sampler is { } name) return DiffusionSamplers.Create(name, config);
        if (options.SchedulerConfig is not null) return DiffusionSamplers.FromConfig(options.SchedulerConfig);
        return DiffusionSamplers.Create(DefaultSampler, config);
    }

    /// <summary>The sampler's name for logs.</summary>
    public static string Describe(GenerationOptions options) =>
        options.Sampler
        ?? (options.SchedulerConfig is { } c ? $"{c.ClassName ?? "?"} from {c.SourcePath}" : DefaultSampler);
}
