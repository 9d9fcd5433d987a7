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

    /// <summary>Whether <see cref="GetWithNovelAppearance"/> is implemented, which a recipe with
    /// <see cref="PretrainingRecipe.VaeNovelAppearanceShare"/> &gt; 0 needs.</summary>
    bool ProvidesNovelAppearances => false;

    /// <summary>
    /// An image for the VAE phase only, never captioned: the example at <paramref name="index"/> with its objects in an
    /// appearance (colours, pattern, outline, emblem) that no caption describes, so the autoencoder learns to encode more
    /// than the captioned world shows — what a personalized concept brings. Deterministic in the index.
    /// </summary>
    /// <exception cref="NotSupportedException">The source does not provide them (<see cref="ProvidesNovelAppearances"/> is false).</exception>
    RgbImage GetWithNovelAppearance(long index) =>
        throw new NotSupportedException($"{GetType().Name} does not provide novel appearances (IPretrainingSource.ProvidesNovelAppearances is false).");
}
