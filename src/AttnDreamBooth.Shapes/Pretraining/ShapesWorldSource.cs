using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The pretraining data: renders and captions of a <see cref="ShapesWorld"/> (held-out combinations excluded).</summary>
public sealed class ShapesWorldSource : IPretrainingSource
{
    // Keeps the appearance stream of an index apart from the sampler's stream for the same index.
    private const long NovelAppearanceSalt = 0x4E6F76656C417070;

    private readonly ShapesSampler _sampler;
    private readonly ShapesWorld _world;
    private readonly long _seed;

    /// <summary>Samples <paramref name="world"/> with <paramref name="seed"/> at <paramref name="imageSize"/> pixels; captions are never
    /// emptied here (the pretrainer drops them itself, from its own random stream).</summary>
    public ShapesWorldSource(ShapesWorld world, long seed, int imageSize)
    {
        ArgumentNullException.ThrowIfNull(world);
        _world = world;
        _seed = seed;
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

    /// <inheritdoc />
    public bool ProvidesNovelAppearances => true;

    /// <inheritdoc />
    /// <remarks>The scene of <see cref="Get"/> at the same index, every object drawn in its own random appearance
    /// (uniform random colours, a world pattern, an outline two times in three, an emblem one time in two).</remarks>
    public RgbImage GetWithNovelAppearance(long index)
    {
        var scene = _sampler.Describe(index).Scene;
        var rng = new WorldRandom(ShapesSampler.Mix(_seed ^ NovelAppearanceSalt, index));
        var restyled = scene with { Objects = [.. scene.Objects.Select(o => o with { Concept = NovelAppearances.Draw(_world, rng) })] };
        return ShapesRenderer.Render(restyled, ImageSize).Image;
    }
}
