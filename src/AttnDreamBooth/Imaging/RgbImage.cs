namespace AttnDreamBooth.Imaging;

/// <summary>A decoded, upright, opaque 8-bit RGB image (row-major, 3 bytes per pixel, no padding).</summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="pixels"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The buffer length is not width × height × 3, or a side is not positive.</exception>
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width <= 0 || height <= 0) throw new ArgumentException($"Image sides must be positive; got {width}x{height}.");
        if (pixels.LongLength != (long)width * height * 3)
            throw new ArgumentException($"A {width}x{height} RGB image needs {(long)width * height * 3} bytes; got {pixels.LongLength}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The pixels, R G B per pixel, row by row.</summary>
    public byte[] Pixels { get; }

    /// <summary>The colour at (<paramref name="x"/>, <paramref name="y"/>).</summary>
    public RgbColor this[int x, int y]
    {
        get
        {
            if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}) is outside {Width}x{Height}.");
            int i = (y * Width + x) * 3;
            return new RgbColor(Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }

    /// <summary>Decodes an image file (PNG, JPEG, WebP, …) into RGB as stored: no EXIF rotation, alpha dropped without
    /// compositing, at most 89,478,485 declared pixels. This is how the reference CLIP evaluation reads its photos;
    /// training photos go through the concept's image loader, which also honours EXIF orientation.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a decodable image, declares too many pixels or is truncated.</exception>
    /// <exception cref="IO.UnsupportedFileTypeException">The path is a device, FIFO or socket.</exception>
    public static RgbImage Load(string path) => RgbImageDecoding.Load(path);

    /// <summary>PNG bytes of the image.</summary>
    public byte[] EncodePng() => RgbImageConversions.EncodePng(this);

    /// <summary>Writes the image as PNG, atomically.</summary>
    public void SavePng(string path) => RgbImageConversions.SavePng(this, path);
}
