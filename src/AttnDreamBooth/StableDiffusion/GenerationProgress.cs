namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// Progress of a generation call, reported after every denoising step through <see cref="IProgress{T}"/>. The images
/// of a call are denoised together as one batch, so every report covers images
/// <see cref="Image"/> .. <see cref="Image"/> + <see cref="ImagesInBatch"/> - 1 of <see cref="ImageCount"/>.
/// </summary>
/// <param name="Image">Index of the first image being denoised (0 for a single batch).</param>
/// <param name="ImagesInBatch">How many images this batch denoises together.</param>
/// <param name="ImageCount">How many images the call produces in total.</param>
/// <param name="Step">Denoising steps completed, 1 to <paramref name="TotalSteps"/>.</param>
/// <param name="TotalSteps">Model evaluations of the sampler (Heun and KDPM2 take about two per requested step, PNDM one more).</param>
public sealed record GenerationProgress(int Image, int ImagesInBatch, int ImageCount, int Step, int TotalSteps)
{
    /// <summary>The share of the call's denoising work done, 0 to 1.</summary>
    public double Fraction => ImageCount == 0 || TotalSteps == 0
        ? 1.0
        : ((double)Image * TotalSteps + (double)ImagesInBatch * Step) / ((double)ImageCount * TotalSteps);
}
