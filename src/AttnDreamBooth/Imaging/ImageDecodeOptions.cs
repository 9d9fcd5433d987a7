using AttnDreamBooth.IO;

namespace AttnDreamBooth.Imaging;

/// <summary>How <see cref="ImageDecoder"/> checks and decodes one image: the size limits (from
/// <see cref="ResourceLimits"/>), the smallest side accepted, the colour transparency is composited onto, and whether
/// truncated pixel data is tolerated.</summary>
internal sealed record ImageDecodeOptions
{
    /// <summary>Most pixels the header may declare (<see cref="ResourceLimits.MaxImagePixels"/>).</summary>
    public required long MaxPixels { get; init; }

    /// <summary>Largest encoded size in bytes (<see cref="ResourceLimits.MaxImageFileBytes"/>).</summary>
    public required long MaxFileBytes { get; init; }

    /// <summary>Images whose shorter side is below this are refused (default 1).</summary>
    public int MinimumSide { get; init; } = 1;

    /// <summary>Transparent pixels are composited onto this colour (default white).</summary>
    public RgbColor AlphaBackground { get; init; } = RgbColor.White;

    /// <summary>Accept pixel data that ends early (the missing rows stay as decoded so far); off by default, because such
    /// an image would be trained on or scored as if it were complete.</summary>
    public bool AllowTruncated { get; init; }

    /// <summary>The size limits of <paramref name="limits"/> with the default decoding settings.</summary>
    public static ImageDecodeOptions From(ResourceLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        return new ImageDecodeOptions { MaxPixels = limits.MaxImagePixels, MaxFileBytes = limits.MaxImageFileBytes };
    }
}
