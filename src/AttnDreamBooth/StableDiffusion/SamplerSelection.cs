using AttnDreamBooth.Schedulers;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>Turns <see cref="GenerationOptions"/>' sampler choice into a sampler built from a scheduler config.</summary>
internal static class SamplerSelection
{
    /// <summary>
    /// The config is <see cref="GenerationOptions.SchedulerConfig"/> or else the model's. The sampler is
    /// <see cref="GenerationOptions.SamplerName"/> when given; else the class the options' own config names when one is
    /// given; else <see cref="GenerationOptions.Sampler"/>.
    /// </summary>
    public static IDiffusionSampler Create(GenerationOptions options, SchedulerConfig modelConfig)
    {
        var config = options.SchedulerConfig ?? modelConfig;
        if (options.SamplerName is { } name) return DiffusionSamplers.Create(name, config);
        if (options.SchedulerConfig is not null) return DiffusionSamplers.FromConfig(options.SchedulerConfig);
        return DiffusionSamplers.Create(ClassOf(options.Sampler), config);
    }

    /// <summary>A short description for logs ("euler-a", "UniPCMultistepScheduler from scheduler_config.json" …).</summary>
    public static string Describe(GenerationOptions options) =>
        options.SamplerName
        ?? (options.SchedulerConfig is { } c ? $"{c.ClassName ?? "?"} from {c.SourcePath}" : options.Sampler.ToString());

    public static SchedulerClass ClassOf(SamplerKind kind) => kind switch
    {
        SamplerKind.DpmSolverPlusPlus => SchedulerClass.DpmSolverMultistep,
        SamplerKind.Ddim => SchedulerClass.Ddim,
        SamplerKind.Euler => SchedulerClass.EulerDiscrete,
        SamplerKind.EulerAncestral => SchedulerClass.EulerAncestralDiscrete,
        SamplerKind.UniPC => SchedulerClass.UniPCMultistep,
        SamplerKind.Pndm => SchedulerClass.Pndm,
        SamplerKind.Lms => SchedulerClass.LmsDiscrete,
        SamplerKind.Heun => SchedulerClass.HeunDiscrete,
        SamplerKind.KDpm2 => SchedulerClass.KDpm2Discrete,
        SamplerKind.DpmSolverSinglestep => SchedulerClass.DpmSolverSinglestep,
        SamplerKind.Deis => SchedulerClass.DeisMultistep,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };
}
