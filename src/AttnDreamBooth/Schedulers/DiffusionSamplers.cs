namespace AttnDreamBooth.Schedulers;

/// <summary>
/// Builds any sampler by name or from a scheduler config, with diffusers' <c>from_config</c> semantics: the file's keys
/// that the chosen class takes win, keys of other classes are ignored (kept in <see cref="SchedulerConfig.CarriedKeys"/>),
/// and every other argument takes the chosen class's default. So one <c>scheduler_config.json</c> (e.g. SD 1.5's
/// <c>PNDMScheduler</c> file) switches to any sampler, as <c>pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)</c> does.
/// </summary>
public static class DiffusionSamplers
{
    private static readonly (string Name, SchedulerClass Class, string[] Aliases)[] Table =
    [
        ("dpm++", SchedulerClass.DpmSolverMultistep, ["dpmsolver++", "dpm-solver++", "dpmsolver-multistep", "dpm++2m", "dpmsolvermultistepscheduler"]),
        ("ddim", SchedulerClass.Ddim, ["ddimscheduler"]),
        ("ddpm", SchedulerClass.Ddpm, ["ddpmscheduler"]),
        ("euler", SchedulerClass.EulerDiscrete, ["eulerdiscretescheduler"]),
        ("euler-a", SchedulerClass.EulerAncestralDiscrete, ["euler-ancestral", "eulerancestraldiscretescheduler"]),
        ("unipc", SchedulerClass.UniPCMultistep, ["unipcmultistepscheduler"]),
        ("pndm", SchedulerClass.Pndm, ["plms", "pndmscheduler"]),
        ("lms", SchedulerClass.LmsDiscrete, ["lmsdiscretescheduler"]),
        ("heun", SchedulerClass.HeunDiscrete, ["heundiscretescheduler"]),
        ("kdpm2", SchedulerClass.KDpm2Discrete, ["dpm2", "kdpm2discretescheduler"]),
        ("dpm-singlestep", SchedulerClass.DpmSolverSinglestep, ["dpmsolver-singlestep", "dpm++-singlestep", "dpmsolversinglestepscheduler"]),
        ("deis", SchedulerClass.DeisMultistep, ["deismultistepscheduler"]),
    ];

    private const string KarrasSuffix = "-karras";

    /// <summary>The short sampler names (each also accepts a <c>-karras</c> suffix where the class takes Karras sigmas).</summary>
    public static IReadOnlyList<string> Names { get; } = Table.Select(e => e.Name).ToArray();

    /// <summary>
    /// Builds the sampler called <paramref name="name"/> from <paramref name="config"/>: a short name (<see cref="Names"/>,
    /// case-insensitive, <c>_</c> and <c>-</c> alike), an alias (<c>plms</c>, <c>dpmsolver++</c> …) or a diffusers class name
    /// (<c>EulerDiscreteScheduler</c>). A <c>-karras</c> suffix sets <c>use_karras_sigmas</c>.
    /// </summary>
    /// <exception cref="SchedulerException">The name is not known, or <c>-karras</c> was asked of a class without Karras sigmas.</exception>
    public static IDiffusionSampler Create(string name, SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (target, karras) = Resolve(name);
        return Create(target, karras ? config.With(new Dictionary<string, object?> { ["use_karras_sigmas"] = true }) : config);
    }

    /// <summary>Maps a sampler name to its class and whether it asks for Karras sigmas (see <see cref="Create(string, SchedulerConfig)"/>).</summary>
    /// <exception cref="SchedulerException">The name is not known.</exception>
    internal static (SchedulerClass Class, bool Karras) Resolve(string name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw SchedulerException.UnknownSampler(name ?? "", "the name is empty");
        string key = name.Trim().ToLowerInvariant().Replace('_', '-');
        bool karras = key.EndsWith(KarrasSuffix, StringComparison.Ordinal);
        if (karras) key = key[..^KarrasSuffix.Length];
        foreach (var (short_, cls, aliases) in Table)
        {
            if (key != short_ && !aliases.Contains(key)) continue;
            if (karras && !TakesKarrasSigmas(cls))
                throw SchedulerException.UnknownSampler(name, $"{ClassName(cls)} has no Karras sigmas");
            return (cls, karras);
        }
        throw SchedulerException.UnknownSampler(name, "no sampler has this name");
    }

    /// <summary>Builds the sampler of the class <paramref name="config"/> names (its <c>_class_name</c>, as resolved by
    /// <see cref="SchedulerConfig.Load"/>), e.g. PNDM for SD 1.5's file.</summary>
    /// <exception cref="SchedulerException">The config names a class that is not implemented.</exception>
    public static IDiffusionSampler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Class == SchedulerClass.Other)
            throw SchedulerException.UnknownSampler(config.ClassName ?? "(no _class_name)", $"{config.SourcePath} names a scheduler class that is not implemented");
        return Create(config.Class, config);
    }

    /// <summary>
    /// The noise scheduler for training a model whose sampler is <paramref name="config"/> (diffusers'
    /// <c>DDPMScheduler.from_config</c> in a training script): the config's schedule and prediction type, and a config
    /// asking for zero terminal SNR (<c>rescale_betas_zero_snr</c>) gets the rescaled schedule it is sampled with.
    /// </summary>
    public static ITrainingNoiseScheduler ForTraining(SchedulerConfig config) => DdpmScheduler.ForTraining(config);

    /// <summary>Builds a sampler of class <paramref name="target"/> from any config (diffusers <c>Target.from_config(config)</c>).</summary>
    internal static IDiffusionSampler Create(SchedulerClass target, SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return target switch
        {
            SchedulerClass.Ddpm => DdpmScheduler.FromConfig(config),
            SchedulerClass.Ddim => DdimScheduler.FromConfig(config),
            SchedulerClass.DpmSolverMultistep => DpmSolverMultistepScheduler.FromConfig(config),
            SchedulerClass.Pndm => PndmScheduler.FromConfig(config),
            SchedulerClass.EulerDiscrete => EulerDiscreteScheduler.FromConfig(config),
            SchedulerClass.EulerAncestralDiscrete => EulerAncestralDiscreteScheduler.FromConfig(config),
            SchedulerClass.UniPCMultistep => UniPCMultistepScheduler.FromConfig(config),
            SchedulerClass.LmsDiscrete => LmsDiscreteScheduler.FromConfig(config),
            SchedulerClass.HeunDiscrete => HeunDiscreteScheduler.FromConfig(config),
            SchedulerClass.KDpm2Discrete => KDpm2DiscreteScheduler.FromConfig(config),
            SchedulerClass.DpmSolverSinglestep => DpmSolverSinglestepScheduler.FromConfig(config),
            SchedulerClass.DeisMultistep => DeisMultistepScheduler.FromConfig(config),
            _ => throw SchedulerException.UnknownSampler(target.ToString(), "not a sampler class"),
        };
    }

    /// <summary>The diffusers class name of <paramref name="target"/> (e.g. <c>EulerDiscreteScheduler</c>).</summary>
    internal static string ClassName(SchedulerClass target) => target switch
    {
        SchedulerClass.Ddpm => "DDPMScheduler",
        SchedulerClass.Ddim => "DDIMScheduler",
        SchedulerClass.DpmSolverMultistep => "DPMSolverMultistepScheduler",
        SchedulerClass.Pndm => "PNDMScheduler",
        SchedulerClass.EulerDiscrete => "EulerDiscreteScheduler",
        SchedulerClass.EulerAncestralDiscrete => "EulerAncestralDiscreteScheduler",
        SchedulerClass.UniPCMultistep => "UniPCMultistepScheduler",
        SchedulerClass.LmsDiscrete => "LMSDiscreteScheduler",
        SchedulerClass.HeunDiscrete => "HeunDiscreteScheduler",
        SchedulerClass.KDpm2Discrete => "KDPM2DiscreteScheduler",
        SchedulerClass.DpmSolverSinglestep => "DPMSolverSinglestepScheduler",
        SchedulerClass.DeisMultistep => "DEISMultistepScheduler",
        _ => target.ToString(),
    };

    private static bool TakesKarrasSigmas(SchedulerClass target) => SchedulerConfigKeys.ArgumentsOf(target).Contains("use_karras_sigmas");
}
