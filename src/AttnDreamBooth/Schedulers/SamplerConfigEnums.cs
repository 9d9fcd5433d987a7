namespace AttnDreamBooth.Schedulers;

/// <summary>How the Euler sampler places its sigmas between the spaced timesteps (diffusers <c>interpolation_type</c>).</summary>
internal enum SigmaInterpolation
{
    /// <summary><c>linear</c>: linear interpolation of the training sigmas at the (fractional) timesteps (the default).</summary>
    Linear,

    /// <summary><c>log_linear</c>: read from configs; refused when building a sampler (diffusers 0.24 returns its sigmas
    /// in ascending order with one entry too many, which does not sample).</summary>
    LogLinear,
}

/// <summary>What the Euler sampler hands the model as its timestep (diffusers <c>timestep_type</c>).</summary>
internal enum TimestepType
{
    /// <summary><c>discrete</c>: the (possibly fractional) training timestep (the default).</summary>
    Discrete,

    /// <summary><c>continuous</c>: 0.25 log(sigma), for v-prediction models trained on continuous time; with other
    /// prediction types diffusers ignores it.</summary>
    Continuous,
}
