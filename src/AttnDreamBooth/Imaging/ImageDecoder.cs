using System.Buffers.Binary;
using SkiaSharp;

namespace AttnDreamBooth.Imaging;

/// <summary>
/// The one image decoder, used for concept photos, cached class images and images loaded for evaluation alike: the
/// file is opened as a bounded regular file (<see cref="ImageSource"/>); JPEG, PNG and WebP only; the header is
/// checked (format, sides, minimum size, declared pixels) before any pixel is decoded; truncated pixel data is an
/// error unless allowed; EXIF orientation is applied; grayscale, CMYK, palette and 16-bit images become 8-bit RGB;
/// transparency is composited onto <see cref="ImageDecodeOptions.AlphaBackground"/>. Every failure is an
/// <see cref="InvalidImageException"/> naming the file.
/// </summary>
internal static class ImageDecoder
{
    /// <summary>Decodes the image file at <paramref name="path"/> into an upright RGB image.</summary>
    /// <exception cref="InvalidImageException">The file is unreadable, empty, unsupported, corrupt, truncated,
    /// zero-sized, too small or beyond a size limit.</exception>
    public static RgbImage Load(string path, ImageDecodeOptions options) => Load(ImageSource.FromFile(path), options);

    /// <summary>Reads and checks the header of <paramref name="source"/> without decoding pixels.</summary>
    /// <exception cref="InvalidImageException">The image is unreadable, empty, unsupported, corrupt, zero-sized,
    /// too small or beyond a size limit.</exception>
    public static ImageInfo Inspect(ImageSource source, ImageDecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        byte[] bytes = source.ReadAllBytes(options.MaxFileBytes);
        using var data = SKData.CreateCopy(bytes);
        using var codec = OpenCodec(source.Name, bytes, data, out var format);
        return CheckHeader(source.Name, codec, format, options);
    }

    /// <summary>Validates and decodes <paramref name="source"/> into an upright RGB image.</summary>
    /// <exception cref="InvalidImageException">As <see cref="Inspect"/>, or the pixel data is damaged or truncated.</exception>
    public static RgbImage Load(ImageSource source, ImageDecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        byte[] bytes = source.ReadAllBytes(options.MaxFileBytes);
        using var data = SKData.CreateCopy(bytes);
        using var codec = OpenCodec(source.Name, bytes, data, out var format);
        var info = CheckHeader(source.Name, codec, format, options);
        byte[] rgba = DecodeRgba(source.Name, codec, info, options.AllowTruncated);
        var rgb = Composite(rgba, info.StoredWidth, info.StoredHeight, options.AlphaBackground);
        return Orient(rgb, info.ExifOrientation);
    }

    /// <summary>Turns a stored image into its upright form for an EXIF orientation value 1..8.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The orientation is not 1..8.</exception>
    public static RgbImage Orient(RgbImage image, int exifOrientation)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (exifOrientation is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(exifOrientation), exifOrientation, "EXIF orientation is 1..8.");
        if (exifOrientation == 1) return image;
        int w = image.Width, h = image.Height;
        bool swap = exifOrientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < oh; y++)
        {
            for (int x = 0; x < ow; x++)
            {
                // (sx, sy): the stored pixel shown at (x, y) of the upright image.
                var (sx, sy) = exifOrientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                int si = (sy * w + sx) * 3, di = (y * ow + x) * 3;
                dst[di] = src[si];
                dst[di + 1] = src[si + 1];
                dst[di + 2] = src[si + 2];
            }
        }
        return new RgbImage(ow, oh, dst);
    }

    private static SKCodec OpenCodec(string name, byte[] bytes, SKData data, out ImageFormat format)
    {
        if (bytes.Length == 0) throw Problem(name, ImageProblemKind.Empty, "is empty (0 bytes).");
        format = Sniff(bytes) ?? throw Problem(name, ImageProblemKind.Unsupported,
            $"is not a JPEG, PNG or WebP image{DescribeOther(bytes)}.");
        var codec = SKCodec.Create(data);
        if (codec is null)
        {
            if (format == ImageFormat.Png && bytes.Length >= 24 && (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)) == 0 || BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)) == 0))
                throw Problem(name, ImageProblemKind.ZeroSized, "declares a width or height of 0.");
            throw Problem(name, ImageProblemKind.Corrupt, $"has a {format} signature but its header cannot be read (damaged or truncated file).");
        }
        return codec;
    }

    private static ImageInfo CheckHeader(string name, SKCodec codec, ImageFormat format, ImageDecodeOptions options)
    {
        int w = codec.Info.Width, h = codec.Info.Height;
        if (w <= 0 || h <= 0) throw Problem(name, ImageProblemKind.ZeroSized, $"declares a size of {w}x{h}.");
        if ((long)w * h > options.MaxPixels)
            throw Problem(name, ImageProblemKind.TooLarge,
                $"declares {w}x{h} = {(long)w * h:N0} pixels, which {IO.ResourceLimits.Exceeds(nameof(IO.ResourceLimits.MaxImagePixels), options.MaxPixels)}; it was not decoded.");
        if (Math.Min(w, h) < options.MinimumSide)
            throw Problem(name, ImageProblemKind.TooSmall, $"is {w}x{h}; its shorter side is below the minimum of {options.MinimumSide} pixels (ConceptImageOptions.MinimumSide for concept photos).");
        int orientation = (int)codec.EncodedOrigin;
        if (orientation is < 1 or > 8) orientation = 1;
        return new ImageInfo(format, w, h, orientation);
    }

    private static unsafe byte[] DecodeRgba(string name, SKCodec codec, ImageInfo info, bool allowTruncated)
    {
        var target = new SKImageInfo(info.StoredWidth, info.StoredHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[(long)info.StoredWidth * info.StoredHeight * 4];
        SKCodecResult result;
        fixed (byte* p = rgba) result = codec.GetPixels(target, (IntPtr)p);
        if (result != SKCodecResult.Success && !(allowTruncated && result == SKCodecResult.IncompleteInput))
        {
            string why = result switch
            {
                SKCodecResult.IncompleteInput => "its pixel data is truncated (ends early)",
                SKCodecResult.ErrorInInput => "its pixel data is damaged",
                _ => $"it cannot be decoded ({result})",
            };
            throw Problem(name, ImageProblemKind.Corrupt, $"is a {info.Format} image of {info.StoredWidth}x{info.StoredHeight}, but {why}.");
        }
        return rgba;
    }

    private static RgbImage Composite(byte[] rgba, int w, int h, RgbColor background)
    {
        var rgb = new byte[(long)w * h * 3];
        for (long i = 0, j = 0; i < rgba.LongLength; i += 4, j += 3)
        {
            int a = rgba[i + 3];
            if (a == 255)
            {
                rgb[j] = rgba[i];
                rgb[j + 1] = rgba[i + 1];
                rgb[j + 2] = rgba[i + 2];
            }
            else
            {
                int inv = 255 - a;
                rgb[j] = (byte)((rgba[i] * a + background.R * inv + 127) / 255);
                rgb[j + 1] = (byte)((rgba[i + 1] * a + background.G * inv + 127) / 255);
                rgb[j + 2] = (byte)((rgba[i + 2] * a + background.B * inv + 127) / 255);
            }
        }
        return new RgbImage(w, h, rgb);
    }

    private static ImageFormat? Sniff(byte[] b)
    {
        if (b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat.Jpeg;
        if (b.Length >= 8 && b.AsSpan(0, 8).SequenceEqual(PngSignature)) return ImageFormat.Png;
        if (b.Length >= 12 && b.AsSpan(0, 4).SequenceEqual("RIFF"u8) && b.AsSpan(8, 4).SequenceEqual("WEBP"u8)) return ImageFormat.WebP;
        return null;
    }

    private static string DescribeOther(byte[] b)
    {
        string? what =
            b.Length >= 4 && b.AsSpan(0, 4).SequenceEqual("GIF8"u8) ? "GIF" :
            b.Length >= 2 && b[0] == (byte)'B' && b[1] == (byte)'M' ? "BMP" :
            b.Length >= 4 && (b.AsSpan(0, 4).SequenceEqual("II*\0"u8) || b.AsSpan(0, 4).SequenceEqual("MM\0*"u8)) ? "TIFF" :
            b.Length >= 12 && b.AsSpan(4, 4).SequenceEqual("ftyp"u8) ? $"ISO media ('{System.Text.Encoding.ASCII.GetString(b, 8, 4)}', e.g. HEIC/AVIF)" :
            b.Length >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 1 && b[3] == 0 ? "ICO" :
            b.Length >= 4 && b.AsSpan(0, 4).SequenceEqual("8BPS"u8) ? "Photoshop" :
            null;
        return what is null ? " (unrecognised content)" : $" (found {what}; convert it to JPEG, PNG or WebP)";
    }

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static InvalidImageException Problem(string name, ImageProblemKind kind, string detail) => new(name, kind, detail);
}
