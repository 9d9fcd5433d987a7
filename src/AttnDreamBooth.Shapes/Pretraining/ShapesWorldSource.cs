namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The pretraining data: renders and captions of a <see cref="ShapesWorld"/> (held-out combinations excluded).</summary>
public sealed class ShapesWorldSource : IPretrainingSource
{
    private readonly ShapesSampler _sampler;

    /// <summary>Samples <paramref name="world"/> with <paramref name="seed"/> at <paramref name="imageSize"/> pixels; captions are never
    /// emptied here (the pretrainer drops them itself, from its own random stream).</summary>
    public ShapesWorldSource(ShapesWorld world, long seed, int imageSize)
    {
        ArgumentNullException.ThrowIfNull(world);
        _sampler = new ShapesSampler(world, seed, new ShapesSamplerOptions { ImageSize = imageSize, EmptyCaptionProbability = 0, HeldOut = HeldOutPolicy.Exclude });
    }

    /// <inheritdoc />
    public int ImageSize => _sampler.ImageSize;

    /// <inheritdoc />
    public bool ProvidesObjectMasks => true;

    /// <inheritdoc />
    public PretrainingExample Get(long index)
    {
        var sample = _sampler.Sample(index);
        return new PretrainingExample(sample.Image, sample.Caption) { Masks = sample.Masks };
    }
}
