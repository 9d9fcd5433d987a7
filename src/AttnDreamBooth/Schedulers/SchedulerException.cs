namespace AttnDreamBooth.Schedulers;

/// <summary>
/// A sampler cannot be made or was used out of order: a sampler name or scheduler class that
/// <see cref="DiffusionSamplers"/> does not know (then <see cref="SamplerName"/> says which), or <c>Step</c> called before
/// <c>SetTimesteps</c> or after its last step, or with a timestep that the schedule set by <c>SetTimesteps</c> does not
/// have at that point (then <see cref="Timestep"/> says which).
/// </summary>
public sealed class SchedulerException : AttnDreamBoothException
{
    /// <summary>Creates the exception for a sampler used out of order.</summary>
    /// <param name="scheduler">The scheduler class at fault.</param>
    /// <param name="problem">What is wrong.</param>
    public SchedulerException(string scheduler, string problem)
        : base($"{scheduler}: {problem}")
    {
        Scheduler = scheduler;
    }

    private SchedulerException(string message, string scheduler, long? timestep, string? paramName, string? samplerName)
        : base(message)
    {
        Scheduler = scheduler;
        Timestep = timestep;
        ParamName = paramName;
        SamplerName = samplerName;
    }

    /// <summary><c>Step</c> was given <paramref name="timestep"/>, which the schedule does not have at that point.</summary>
    internal static SchedulerException TimestepNotInSchedule(string scheduler, long timestep, string problem) =>
        new($"{scheduler}: timestep {timestep} {problem}", scheduler, timestep, "timestep", null);

    /// <summary>No sampler has the name (or scheduler class) <paramref name="name"/>.</summary>
    internal static SchedulerException UnknownSampler(string name, string problem) =>
        new($"Unknown sampler '{name}': {problem}. Known samplers: {string.Join(", ", DiffusionSamplers.Names)} (or a diffusers scheduler class name such as EulerDiscreteScheduler).",
            name, null, null, name);

    /// <summary>The scheduler class at fault, e.g. <c>DdimScheduler</c>, or the sampler name that was asked for.</summary>
    public string Scheduler { get; }

    /// <summary>The sampler name or scheduler class that was asked for, when no sampler has it; otherwise null.</summary>
    public string? SamplerName { get; }

    /// <summary>The timestep that was passed, when the schedule does not have it.</summary>
    public long? Timestep { get; }

    /// <summary>The name of the argument at fault (<c>timestep</c>), when it is one.</summary>
    public string? ParamName { get; }
}
