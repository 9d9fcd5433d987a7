namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// The numbers became NaN or infinite: during sampling, the latents (they would decode to a black image; the weights or
/// the scheduler config are broken, or the guidance scale or precision is unusable; nothing is returned), or during
/// training, the loss (the run stopped before any parameter was updated; the last checkpoint, if any, is left as it was).
/// </summary>
public sealed class NonFiniteValuesException : AttnDreamBoothException
{
    private NonFiniteValuesException(string message, int step, int? stage, long? timestep, string? prompt, string? lastCheckpoint)
        : base(message)
    {
        Step = step;
        Stage = stage;
        Timestep = timestep;
        Prompt = prompt;
        LastCheckpoint = lastCheckpoint;
    }

    /// <summary>The latents were first non-finite after denoising step <paramref name="step"/> (1-based), at
    /// <paramref name="timestep"/>, for <paramref name="prompt"/>.</summary>
    internal static NonFiniteValuesException Sampling(int step, long timestep, string prompt) =>
        new($"Generation produced NaN or infinite latents at denoising step {step} (timestep {timestep}) for the prompt '{prompt}'. " +
            "The model's weights or scheduler config are not usable (load them with the finite check on) or the guidance scale is extreme.",
            step, null, timestep, prompt, null);

    /// <summary>The training loss was not finite at <paramref name="step"/> of <paramref name="stage"/>.</summary>
    internal static NonFiniteValuesException Training(int stage, int step, double mse, double attention, string? lastCheckpoint) =>
        new($"Training diverged in stage {stage} at step {step}: the loss is not finite (mse {mse}, attention {attention}). " +
            (lastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is '{lastCheckpoint}'.") +
            " Lower the learning rate or check the images.",
            step, stage, null, null, lastCheckpoint);

    /// <summary>The denoising step, or the training step within its stage (1-based).</summary>
    public int Step { get; }

    /// <summary>The training stage (1–3), or null for sampling.</summary>
    public int? Stage { get; }

    /// <summary>The timestep of the denoising step, or null for training.</summary>
    public long? Timestep { get; }

    /// <summary>The prompt being sampled, or null for training.</summary>
    public string? Prompt { get; }

    /// <summary>The newest training checkpoint on disk, or null (always null for sampling).</summary>
    public string? LastCheckpoint { get; }
}
