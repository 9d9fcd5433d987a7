namespace AttnDreamBooth.Schedulers;

/// <summary>A sampler was used out of order: <c>Step</c> before <c>SetTimesteps</c>, or after its last step.</summary>
public sealed class SchedulerStateException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public SchedulerStateException(string scheduler, string problem)
        : base($"{scheduler}: {problem}")
    {
        Scheduler = scheduler;
    }

    /// <summary>The scheduler class at fault, e.g. <c>DdimScheduler</c>.</summary>
    public string Scheduler { get; }
}

/// <summary><c>Step</c> was given a timestep that the schedule set by <c>SetTimesteps</c> does not have at that point.</summary>
public sealed class TimestepNotInScheduleException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public TimestepNotInScheduleException(string scheduler, long timestep, string problem)
        : base($"{scheduler}: timestep {timestep} {problem}")
    {
        ParamName = "timestep";
        Scheduler = scheduler;
        Timestep = timestep;
    }

    /// <summary>The scheduler class at fault.</summary>
    public string Scheduler { get; }

    /// <summary>The timestep that was passed.</summary>
    public long Timestep { get; }

    /// <summary>The name of the argument at fault.</summary>
    public string? ParamName { get; }
}
