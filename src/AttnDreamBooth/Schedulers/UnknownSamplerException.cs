namespace AttnDreamBooth.Schedulers;

/// <summary>A sampler name or scheduler class that <see cref="DiffusionSamplers"/> does not know.</summary>
public sealed class UnknownSamplerException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public UnknownSamplerException(string name, string problem)
        : base($"Unknown sampler '{name}': {problem}. Known samplers: {string.Join(", ", DiffusionSamplers.Names)} (or a diffusers scheduler class name such as EulerDiscreteScheduler).")
    {
        SamplerName = name;
    }

    /// <summary>The name that was asked for.</summary>
    public string SamplerName { get; }
}
