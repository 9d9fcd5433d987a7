using SkiaSharp;
using TorchSharp;

namespace AttnDreamBooth.Imaging;

/// <summary>
/// Plain decoding of images into <see cref="RgbImage"/> (no EXIF rotation, alpha dropped without compositing), as
/// evaluation code that follows a Python reference reads its photos; training images go through the concept image
/// loader instead, which validates, orients and composites.
/// </summary>
internal static class RgbImageDecoding
{
    /// <summary>PIL's default decompression-bomb threshold, the default cap on declared pixels.</summary>
    public const long DefaultMaxPixels = 89_478_485;

    /// <summary>Decodes an image file (any format SkiaSharp reads) to RGB, with the same limits as training images:
    /// at most <see cref="DefaultMaxPixels"/> declared pixels, and truncated pixel data is an error.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a decodable image, declares too many pixels or is truncated.</exception>
    public static RgbImage Load(string path) => Load(path, DefaultMaxPixels, allowTruncated: false);

    /// <summary>Decodes an image file (any format SkiaSharp reads) to RGB. The declared size is checked against
    /// <paramref name="maxPixels"/> before any pixel is decoded; only regular files are opened.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="maxPixels">The largest width × height accepted.</param>
    /// <param name="allowTruncated">Accept a file whose pixel data ends early (the missing rows stay black); off by
    /// default because such an image would be scored as if it were complete.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a decodable image, declares too many pixels or is truncated.</exception>
    public static RgbImage Load(string path, long maxPixels, bool allowTruncated = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPixels, 1);
        if (!File.Exists(path)) throw new FileNotFoundException($"Image '{path}' does not exist.", path);
        AttnDreamBooth.IO.RegularFile.Require(path);
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"'{path}' is not a decodable image.");
        long declared = (long)codec.Info.Width * codec.Info.Height;
        // Checked before the bitmap is allocated: a few bytes of header can declare gigabytes of pixels.
        if (codec.Info.Width <= 0 || codec.Info.Height <= 0 || declared > maxPixels)
            throw new InvalidDataException($"'{path}' declares {codec.Info.Width}x{codec.Info.Height} = {declared:N0} pixels, more than the cap of {maxPixels:N0}; it was not decoded.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput && !allowTruncated)
            throw new InvalidDataException($"'{path}' is truncated: its pixel data ends early (pass allowTruncated to accept it).");
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new InvalidDataException($"'{path}' could not be decoded ({result}).");
        return FromBitmap(bitmap);
    }

    /// <summary>The RGB channels of a Skia bitmap (unpremultiplied; alpha is dropped).</summary>
    /// <exception cref="ArgumentException">The bitmap's colour type cannot be converted.</exception>
    public static RgbImage FromBitmap(SKBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        if (bitmap.AlphaType != SKAlphaType.Premul && bitmap.ColorType is SKColorType.Rgba8888 or SKColorType.Bgra8888)
            return FromRgbaBytes(bitmap.GetPixelSpan(), bitmap.Width, bitmap.Height, bitmap.RowBytes, bitmap.ColorType == SKColorType.Bgra8888);
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!bitmap.CopyTo(rgba, SKColorType.Rgba8888)) throw new ArgumentException($"Bitmaps of color type {bitmap.ColorType} cannot be converted to RGB.", nameof(bitmap));
        return FromRgbaBytes(rgba.GetPixelSpan(), rgba.Width, rgba.Height, rgba.RowBytes, bgr: false);
    }

    /// <summary>An image from an [H, W, 3] tensor of integer values in 0..255 (any numeric dtype).</summary>
    /// <exception cref="ArgumentException">Wrong shape, or values that are not integers in 0..255.</exception>
    public static RgbImage FromHwcTensor(torch.Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.ndim != 3 || image.shape[2] != 3)
            throw new ArgumentException($"Expected an image tensor [H, W, 3], got [{string.Join(", ", image.shape)}].", nameof(image));
        using var scope = torch.NewDisposeScope();
        var values = image.detach().cpu().to_type(torch.float64);
        if (!values.eq(values.round()).all().item<bool>() || values.min().item<double>() < 0 || values.max().item<double>() > 255)
            throw new ArgumentException("Image tensor values must be integers in 0..255.", nameof(image));
        var bytes = values.to_type(torch.uint8).contiguous();
        return new RgbImage((int)image.shape[1], (int)image.shape[0], bytes.bytes.ToArray());
    }

    /// <summary>The pixels as an [H, W, 3] uint8 tensor.</summary>
    public static torch.Tensor ToHwcTensor(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return torch.tensor(image.Pixels, torch.uint8).reshape(image.Height, image.Width, 3);
    }

    private static RgbImage FromRgbaBytes(ReadOnlySpan<byte> source, int width, int height, int rowBytes, bool bgr)
    {
        var pixels = new byte[width * height * 3];
        int r = bgr ? 2 : 0, b = bgr ? 0 : 2;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int i = y * rowBytes + x * 4, o = (y * width + x) * 3;
                pixels[o] = source[i + r];
                pixels[o + 1] = source[i + 1];
                pixels[o + 2] = source[i + b];
            }
        }
        return new RgbImage(width, height, pixels);
    }
}
