namespace AttnDreamBooth.StableDiffusion;

/// <summary>The sampler used for generation.</summary>
public enum SamplerKind
{
    /// <summary>DPM-Solver++ (2M, multistep): the official AttnDreamBooth inference sampler.</summary>
    DpmSolverPlusPlus,

    /// <summary>DDIM (eta 0 by default).</summary>
    Ddim,

    /// <summary>Euler (<see cref="Schedulers.EulerDiscreteScheduler"/>).</summary>
    Euler,

    /// <summary>Euler ancestral (<see cref="Schedulers.EulerAncestralDiscreteScheduler"/>); its noise comes from the seed.</summary>
    EulerAncestral,

    /// <summary>UniPC (<see cref="Schedulers.UniPCMultistepScheduler"/>).</summary>
    UniPC,

    /// <summary>PNDM / PLMS (<see cref="Schedulers.PndmScheduler"/>), the class SD 1.x configs name.</summary>
    Pndm,

    /// <summary>LMS (<see cref="Schedulers.LmsDiscreteScheduler"/>).</summary>
    Lms,

    /// <summary>Heun (<see cref="Schedulers.HeunDiscreteScheduler"/>): about two model calls per step.</summary>
    Heun,

    /// <summary>KDPM2 (<see cref="Schedulers.KDpm2DiscreteScheduler"/>): about two model calls per step.</summary>
    KDpm2,

    /// <summary>DPM-Solver singlestep (<see cref="Schedulers.DpmSolverSinglestepScheduler"/>).</summary>
    DpmSolverSinglestep,

    /// <summary>DEIS (<see cref="Schedulers.DeisMultistepScheduler"/>).</summary>
    Deis,
}
