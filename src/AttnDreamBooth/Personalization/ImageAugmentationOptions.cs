namespace AttnDreamBooth.Personalization;

/// <summary>
/// The training-time augmentations, each switchable. <see cref="Official"/> reproduces the official pipeline:
/// random rotation by up to ±45° expanding the canvas (applied with probability 0.75), resize of the shorter side to
/// the resolution, horizontal flip with probability 0.25, random crop to a square.
/// </summary>
public sealed record ImageAugmentationOptions
{
    /// <summary>The official augmentations.</summary>
    public static ImageAugmentationOptions Official { get; } = new();

    /// <summary>No augmentation: resize and center crop only (deterministic).</summary>
    public static ImageAugmentationOptions None { get; } = new() { RotationProbability = 0, HorizontalFlipProbability = 0, RandomCrop = false };

    /// <summary>Probability of rotating the image, in [0, 1]. Default 0.75.</summary>
    public double RotationProbability { get; init; } = 0.75;

    /// <summary>The rotation angle is uniform in [−this, +this] degrees, in [0, 180]. Default 45. The canvas grows to
    /// hold the whole rotated image; the uncovered corners are black (as torchvision's <c>RandomRotation(expand=True)</c>).</summary>
    public double MaxRotationDegrees { get; init; } = 45;

    /// <summary>Probability of a horizontal flip, in [0, 1]. Default 0.25.</summary>
    public double HorizontalFlipProbability { get; init; } = 0.25;

    /// <summary>Crop a random square of the resized image (true, default) or its center (false).</summary>
    public bool RandomCrop { get; init; } = true;

    /// <summary>Whether any random draw is made (otherwise the result does not depend on the generator).</summary>
    public bool IsRandom => (RotationProbability > 0 && MaxRotationDegrees > 0) || HorizontalFlipProbability > 0 || RandomCrop;
}
