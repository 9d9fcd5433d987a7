using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>One captioned training image.</summary>
/// <param name="Image">The image (square, <see cref="IPretrainingSource.ImageSize"/> pixels a side).</param>
/// <param name="Caption">Its caption.</param>
public sealed record PretrainingExample(RgbImage Image, string Caption);

/// <summary>
/// An endless, deterministic stream of captioned images addressed by index: the same index always gives the same
/// example, so a run's data order is a pure function of its step count and resuming needs no data state.
/// </summary>
public interface IPretrainingSource
{
    /// <summary>Side of every image in pixels.</summary>
    int ImageSize { get; }

    /// <summary>The example at <paramref name="index"/> (any non-negative value).</summary>
    PretrainingExample Get(long index);
}
