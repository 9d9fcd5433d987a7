using SkiaSharp;
using TorchSharp;

namespace AttnDreamBooth.Imaging;

/// <summary>
/// Conversions of already-decoded pixels into <see cref="RgbImage"/>: Skia bitmaps and [H, W, 3] tensors. Encoded files
/// go through <see cref="ImageDecoder"/>, the one decoder with the limits.
/// </summary>
internal static class RgbImageDecoding
{
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
