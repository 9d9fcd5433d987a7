namespace AttnDreamBooth.Personalization;

/// <summary>How training samples are drawn from the concept images.</summary>
public sealed record TrainingDataOptions
{
    /// <summary>Image decoding, validation and augmentation.</summary>
    public ConceptImageOptions Images { get; init; } = new();

    /// <summary>Augmented variants prepared per image and encoded once by the VAE (then sampled per step). Default 16.
    /// Ignored when <see cref="FreshAugmentationEveryStep"/> is set.</summary>
    public int VariantsPerImage { get; init; } = 16;

    /// <summary>Draw and encode a fresh augmentation for every sample of every step, as the official code does
    /// (slower: one VAE encode per sample). Default false.</summary>
    public bool FreshAugmentationEveryStep { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        (Images ?? throw new ArgumentException($"{nameof(Images)} must not be null.", nameof(Images))).Validate();
        if (VariantsPerImage < 1)
            throw new ArgumentException($"{nameof(VariantsPerImage)} must be ≥ 1; got {VariantsPerImage}.", nameof(VariantsPerImage));
    }
}
