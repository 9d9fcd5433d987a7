namespace AttnDreamBooth.Imaging;

/// <summary>An opaque 8-bit RGB colour.</summary>
/// <param name="R">Red.</param>
/// <param name="G">Green.</param>
/// <param name="B">Blue.</param>
public readonly record struct RgbColor(byte R, byte G, byte B)
{
    /// <summary>White (255, 255, 255).</summary>
    public static RgbColor White => new(255, 255, 255);

    /// <summary>Black (0, 0, 0).</summary>
    public static RgbColor Black => new(0, 0, 0);
}
