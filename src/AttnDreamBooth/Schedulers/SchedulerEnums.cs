namespace AttnDreamBooth.Schedulers;

/// <summary>What the denoising network predicts (diffusers <c>prediction_type</c>).</summary>
public enum PredictionType
{
    /// <summary><c>epsilon</c>: the added noise (SD 1.x, SD 2.x base).</summary>
    Epsilon,

    /// <summary><c>v_prediction</c>: v = sqrt(a_t) * noise - sqrt(1 - a_t) * x0 (SD 2.x 768).</summary>
    VPrediction,

    /// <summary><c>sample</c>: the clean sample x0 itself.</summary>
    Sample,
}

/// <summary>How the training betas are laid out (diffusers <c>beta_schedule</c>).</summary>
internal enum BetaSchedule
{
    /// <summary><c>linear</c>: betas evenly spaced from beta_start to beta_end.</summary>
    Linear,

    /// <summary><c>scaled_linear</c>: square roots evenly spaced, then squared (Stable Diffusion).</summary>
    ScaledLinear,

    /// <summary><c>squaredcos_cap_v2</c>: the cosine schedule of improved DDPM, betas capped at 0.999.</summary>
    SquaredCosCapV2,
}

/// <summary>How inference timesteps are picked from the training range (diffusers <c>timestep_spacing</c>).</summary>
internal enum TimestepSpacing
{
    /// <summary><c>leading</c>: multiples of a step ratio counted from 0, plus <c>steps_offset</c>.</summary>
    Leading,

    /// <summary><c>linspace</c>: rounded evenly spaced points over the training range.</summary>
    Linspace,

    /// <summary><c>trailing</c>: evenly spaced points counted down from the last training timestep.</summary>
    Trailing,
}

/// <summary>DDPM posterior variance (diffusers <c>variance_type</c>).</summary>
internal enum DdpmVarianceType
{
    /// <summary><c>fixed_small</c>: the posterior variance beta~_t.</summary>
    FixedSmall,

    /// <summary><c>fixed_small_log</c>: the same variance, applied through its logarithm.</summary>
    FixedSmallLog,

    /// <summary><c>fixed_large</c>: beta_t of the step.</summary>
    FixedLarge,

    /// <summary><c>fixed_large_log</c>: accepted in configs; stepping with it is refused (the reference yields NaN).</summary>
    FixedLargeLog,

    /// <summary><c>learned</c>: the model's second half of channels is the variance.</summary>
    Learned,

    /// <summary><c>learned_range</c>: the model's second half of channels interpolates between the log variances.</summary>
    LearnedRange,
}

/// <summary>DPM-Solver family member (diffusers <c>algorithm_type</c>).</summary>
internal enum DpmSolverAlgorithm
{
    /// <summary><c>dpmsolver++</c>: solves for the data prediction (the default, used by SD pipelines).</summary>
    DpmSolverPlusPlus,

    /// <summary><c>dpmsolver</c>: solves for the noise prediction.</summary>
    DpmSolver,

    /// <summary><c>sde-dpmsolver++</c>: stochastic variant; read from configs but not supported for stepping.</summary>
    SdeDpmSolverPlusPlus,

    /// <summary><c>sde-dpmsolver</c>: stochastic variant; read from configs but not supported for stepping.</summary>
    SdeDpmSolver,

    /// <summary><c>deis</c>: the DEIS multistep solver's only algorithm (DPM-Solver classes read it as dpmsolver++).</summary>
    Deis,
}

/// <summary>Second-order update rule of DPM-Solver (diffusers <c>solver_type</c>).</summary>
internal enum DpmSolverType
{
    /// <summary><c>midpoint</c> (default).</summary>
    Midpoint,

    /// <summary><c>heun</c>.</summary>
    Heun,

    /// <summary><c>logrho</c>: DEIS's rule (DPM-Solver classes read it as midpoint, UniPC as bh2).</summary>
    Logrho,

    /// <summary><c>bh1</c>: UniPC with B(h) = h (DPM-Solver classes read it as midpoint, DEIS as logrho).</summary>
    Bh1,

    /// <summary><c>bh2</c>: UniPC with B(h) = e^h - 1, its default (DPM-Solver classes read it as midpoint, DEIS as logrho).</summary>
    Bh2,
}

/// <summary>The diffusers scheduler classes whose constructor arguments and defaults are known here.</summary>
internal enum SchedulerClass
{
    /// <summary><c>DDPMScheduler</c>.</summary>
    Ddpm,

    /// <summary><c>DDIMScheduler</c>.</summary>
    Ddim,

    /// <summary><c>DPMSolverMultistepScheduler</c>.</summary>
    DpmSolverMultistep,

    /// <summary><c>PNDMScheduler</c> (named by the SD 1.5 and 2.1-base folders; the PNDM/PLMS sampler).</summary>
    Pndm,

    /// <summary>Any other class name; resolved with the keys common to all classes.</summary>
    Other,

    /// <summary><c>EulerDiscreteScheduler</c>.</summary>
    EulerDiscrete,

    /// <summary><c>EulerAncestralDiscreteScheduler</c>.</summary>
    EulerAncestralDiscrete,

    /// <summary><c>UniPCMultistepScheduler</c>.</summary>
    UniPCMultistep,

    /// <summary><c>LMSDiscreteScheduler</c>.</summary>
    LmsDiscrete,

    /// <summary><c>HeunDiscreteScheduler</c>.</summary>
    HeunDiscrete,

    /// <summary><c>KDPM2DiscreteScheduler</c>.</summary>
    KDpm2Discrete,

    /// <summary><c>DPMSolverSinglestepScheduler</c>.</summary>
    DpmSolverSinglestep,

    /// <summary><c>DEISMultistepScheduler</c>.</summary>
    DeisMultistep,
}
