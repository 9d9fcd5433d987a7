namespace AttnDreamBooth.Pipelines.Generation;

/// <summary>The sampler used for generation.</summary>
public enum SamplerKind
{
    /// <summary>DPM-Solver++ (2M, multistep): the official AttnDreamBooth inference sampler.</summary>
    DpmSolverPlusPlus,

    /// <summary>DDIM (eta 0 by default).</summary>
    Ddim,
}
