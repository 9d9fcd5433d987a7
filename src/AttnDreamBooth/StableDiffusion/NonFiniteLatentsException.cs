namespace AttnDreamBooth.StableDiffusion;

/// <summary>Sampling produced NaN or infinite latents, which would decode to a black image. The weights or the
/// scheduler config are broken (or the guidance scale or precision is unusable); nothing is returned.</summary>
public sealed class NonFiniteLatentsException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="step">The denoising step (1-based) after which the latents were first non-finite.</param>
    /// <param name="timestep">Its timestep.</param>
    /// <param name="prompt">The prompt.</param>
    public NonFiniteLatentsException(int step, long timestep, string prompt)
        : base($"Generation produced NaN or infinite latents at denoising step {step} (timestep {timestep}) for the prompt '{prompt}'. " +
               "The model's weights or scheduler config are not usable (load them with the finite check on) or the guidance scale is extreme.")
    {
        Step = step;
        Timestep = timestep;
        Prompt = prompt;
    }

    /// <summary>The denoising step (1-based).</summary>
    public int Step { get; }

    /// <summary>Its timestep.</summary>
    public long Timestep { get; }

    /// <summary>The prompt.</summary>
    public string Prompt { get; }
}
