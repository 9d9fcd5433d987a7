using System.Globalization;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Settings of <see cref="PersonalizedModel.AdaptDecoderAsync"/>: a short fine-tune of the VAE's decoder on the concept's
/// own photos. The encoder stays frozen, so the latents the U-Net was trained on (and generates) mean what they meant;
/// only how they are drawn back into pixels learns the concept's details (fine patterns, exact colours) that a decoder
/// trained on other images renders as the nearest thing it knows. Not part of the AttnDreamBooth method; opt-in.
/// </summary>
public sealed record DecoderAdaptationOptions
{
    /// <summary>The most steps accepted.</summary>
    public const int MaxSteps = 100_000;

    /// <summary>Optimizer steps, 1 to <see cref="MaxSteps"/>. Default 100.</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Learning rate of the AdamW optimizer (<see cref="Training.AdamWOptions.Default"/>'s betas, decay and
    /// epsilon), positive and at most 1. Default 1e-4.</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Photos per step, 1 to 64; a batch larger than the concept's photo count uses every photo once per step.
    /// Default 4.</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>Seed of the batch order and of the posterior draws. Default 0.</summary>
    public long Seed { get; init; }

    /// <summary>How the photos are decoded and sized. Their <see cref="ConceptImageOptions.Resolution"/> is the model's
    /// resolution when 0 or less; augmentations are never applied (the decoder should learn the concept as
    /// photographed). Default: <see cref="ConceptImageOptions"/>' defaults with the model's resolution.</summary>
    public ConceptImageOptions Images { get; init; } = new() { Resolution = 0 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (Steps is < 1 or > MaxSteps)
            throw new ArgumentException($"{nameof(Steps)} must be between 1 and {MaxSteps}; got {Steps}.", nameof(Steps));
        if (!double.IsFinite(LearningRate) || LearningRate <= 0 || LearningRate > 1)
            throw new ArgumentException($"{nameof(LearningRate)} must be positive, finite and at most 1; got {LearningRate.ToString(CultureInfo.InvariantCulture)}.", nameof(LearningRate));
        if (BatchSize is < 1 or > 64)
            throw new ArgumentException($"{nameof(BatchSize)} must be between 1 and 64; got {BatchSize}.", nameof(BatchSize));
        var images = Images ?? throw new ArgumentException($"{nameof(Images)} must not be null.", nameof(Images));
        if (images.Resolution > 0) images.Validate();
        else (images with { Resolution = 8 }).Validate();
    }
}
