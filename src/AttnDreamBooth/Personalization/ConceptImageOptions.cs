using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Personalization;

/// <summary>How concept images are validated, decoded and turned into training tensors. The size limits (declared
/// pixels, file size) are <see cref="IO.ResourceLimits.MaxImagePixels"/> and <see cref="IO.ResourceLimits.MaxImageFileBytes"/>.</summary>
public sealed record ConceptImageOptions
{
    /// <summary>Side of the square training image in pixels (the model's resolution: 512 for SD 2.1-base). A positive
    /// multiple of 8 (the VAE downsamples by 8), at most 4096. Default 512.</summary>
    public int Resolution { get; init; } = 512;

    /// <summary>Images whose shorter side is below this are rejected. Default 64.</summary>
    public int MinimumSide { get; init; } = 64;

    /// <summary>Transparent pixels are composited onto this colour. Default white: a cut-out object reads as an object
    /// on a plain background. (PIL's <c>convert("RGB")</c>, used by the official code, drops alpha instead and keeps
    /// whatever colour the transparent pixels store, usually black.)</summary>
    public RgbColor AlphaBackground { get; init; } = RgbColor.White;

    /// <summary>The augmentations. Default <see cref="ImageAugmentationOptions.Official"/>.</summary>
    public ImageAugmentationOptions Augmentation { get; init; } = ImageAugmentationOptions.Official;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        // The same ceiling as generation's width and height: a larger square would only be allocated to fail.
        if (Resolution < 8 || Resolution % 8 != 0 || Resolution > 4096)
            throw new ArgumentException($"{nameof(Resolution)} must be a positive multiple of 8 up to 4096; got {Resolution} (the model's resolution unless set).", nameof(Resolution));
        if (MinimumSide < 1)
            throw new ArgumentException($"{nameof(MinimumSide)} must be ≥ 1; got {MinimumSide}.", nameof(MinimumSide));
        var a = Augmentation ?? throw new ArgumentException($"{nameof(Augmentation)} must not be null.", nameof(Augmentation));
        Probability(a.RotationProbability, "Augmentation.RotationProbability");
        Probability(a.HorizontalFlipProbability, "Augmentation.HorizontalFlipProbability");
        if (!double.IsFinite(a.MaxRotationDegrees) || a.MaxRotationDegrees < 0 || a.MaxRotationDegrees > 180)
            throw new ArgumentException($"Augmentation.MaxRotationDegrees must be in [0, 180]; got {a.MaxRotationDegrees}.", nameof(Augmentation));
    }

    private static void Probability(double p, string name)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentException($"{name} must be a probability in [0, 1]; got {p}.", nameof(Augmentation));
    }
}
