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

    /// <summary>Decodes a JPEG, PNG or WebP file exactly as concept photos are decoded for training: EXIF orientation
    /// applied, transparency composited onto white, grayscale/CMYK/palette/16-bit converted to 8-bit RGB, with the
    /// default <see cref="IO.ResourceLimits"/> (declared pixels checked before decoding, file size before reading).</summary>
    /// <exception cref="InvalidImageException">The file is missing, unreadable, not a regular file, not a JPEG/PNG/WebP
    /// image, damaged or truncated, or beyond <see cref="IO.ResourceLimits.MaxImagePixels"/> or
    /// <see cref="IO.ResourceLimits.MaxImageFileBytes"/>.</exception>
    public static RgbImage Load(string path) => Load(path, IO.ResourceLimits.Default);

    /// <summary>Decodes an image file as <see cref="Load(string)"/> does, within <paramref name="limits"/>
    /// (e.g. <c>ResourceLimits.Default with { MaxImagePixels = 200_000_000 }</c>).</summary>
    /// <exception cref="InvalidImageException">As <see cref="Load(string)"/>.</exception>
    public static RgbImage Load(string path, IO.ResourceLimits limits)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(limits);
        return ImageDecoder.Load(path, ImageDecodeOptions.From(limits));
    }

    /// <summary>PNG bytes of the image.</summary>
    public byte[] EncodePng() => RgbImageConversions.EncodePng(this);

    /// <summary>Writes the image as PNG, atomically.</summary>
    public void SavePng(string path) => RgbImageConversions.SavePng(this, path);

    /// <summary>
    /// The image of a [3, H, W] (or [1, 3, H, W]) tensor with values in [−1, 1], e.g. what
    /// <see cref="Models.Vae.AutoencoderKL.Decode"/> returns: (x / 2 + 0.5) clamped to [0, 1], × 255, rounded, as diffusers'
    /// post-processing does.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not [3, H, W] or [1, 3, H, W].</exception>
    public static RgbImage FromTensor(TorchSharp.torch.Tensor image) => RgbImageConversions.FromTensor(image);
}
