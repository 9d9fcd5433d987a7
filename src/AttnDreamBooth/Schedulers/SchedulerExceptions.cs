namespace AttnDreamBooth.Schedulers;

/// <summary>A sampler was used out of order: <c>Step</c> before <c>SetTimesteps</c> or after its last step, or with a
/// timestep that the schedule set by <c>SetTimesteps</c> does not have at that point (then <see cref="Timestep"/> says
/// which).</summary>
public sealed class SchedulerStateException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public SchedulerStateException(string scheduler, string problem)
        : base($"{scheduler}: {problem}")
    {
        Scheduler = scheduler;
    }

    private SchedulerStateException(string scheduler, long timestep, string problem)
        : base($"{scheduler}: timestep {timestep} {problem}")
    {
        Scheduler = scheduler;
        Timestep = timestep;
        ParamName = "timestep";
    }

    /// <summary><c>Step</c> was given <paramref name="timestep"/>, which the schedule does not have at that point.</summary>
    internal static SchedulerStateException TimestepNotInSchedule(string scheduler, long timestep, string problem) =>
        new(scheduler, timestep, problem);

    /// <summary>The scheduler class at fault, e.g. <c>DdimScheduler</c>.</summary>
    public string Scheduler { get; }

    /// <summary>The timestep that was passed, when the schedule does not have it.</summary>
    public long? Timestep { get; }

    /// <summary>The name of the argument at fault (<c>timestep</c>), when it is one.</summary>
    public string? ParamName { get; }
}
