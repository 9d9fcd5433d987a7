using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>One captioned training image.</summary>
/// <param name="Image">The image (square, <see cref="IPretrainingSource.ImageSize"/> pixels a side).</param>
/// <param name="Caption">Its caption.</param>
public sealed record PretrainingExample(RgbImage Image, string Caption)
{
    /// <summary>The silhouettes of the image's objects, each the image's size (an empty list: no object), or null when the
    /// source does not know them. Only an object-weighted loss (<see cref="PretrainingRecipe.ObjectLossWeight"/>) reads them.</summary>
    public IReadOnlyList<ObjectMask>? Masks { get; init; }
}

/// <summary>
/// An endless, deterministic stream of captioned images addressed by index: the same index always gives the same
/// example, so a run's data order is a pure function of its step count and resuming needs no data state.
/// </summary>
public interface IPretrainingSource
{
    /// <summary>Side of every image in pixels.</summary>
    int ImageSize { get; }

    /// <summary>Whether every example carries its objects' masks (<see cref="PretrainingExample.Masks"/>), which an
    /// object-weighted loss needs.</summary>
    bool ProvidesObjectMasks => false;

    /// <summary>The example at <paramref name="index"/> (any non-negative value).</summary>
    PretrainingExample Get(long index);
}
