using SkiaSharp;
using TorchSharp;

namespace AttnDreamBooth.Pipelines.Generation;

/// <summary>An 8-bit RGB image in row-major order (3 bytes per pixel).</summary>
public sealed class RgbImage
{
    /// <summary>Creates an image from interleaved RGB bytes.</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.Length != checked(width * height * 3)) throw new ArgumentException($"Expected {width * height * 3} bytes for {width}x{height} RGB, got {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Interleaved RGB bytes, row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>Converts a [3, H, W] tensor in [-1, 1] (values outside are clamped) to an image.</summary>
    public static RgbImage FromTensor(torch.Tensor chw)
    {
        ArgumentNullException.ThrowIfNull(chw);
        if (chw.dim() != 3 || chw.shape[0] != 3) throw new ArgumentException($"Expected a [3, H, W] tensor, got [{string.Join(", ", chw.shape)}].", nameof(chw));
        using var scope = torch.NewDisposeScope();
        var bytes = chw.detach().to_type(torch.float32).cpu().add(1).mul(127.5).round().clamp(0, 255).to_type(torch.uint8).permute(1, 2, 0).contiguous();
        return new RgbImage((int)chw.shape[2], (int)chw.shape[1], bytes.bytes.ToArray());
    }

    /// <summary>A Skia bitmap copy (caller disposes).</summary>
    public SKBitmap ToBitmap()
    {
        var bitmap = new SKBitmap(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[Width * Height * 4];
        for (int i = 0, j = 0; i < Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = Pixels[i];
            rgba[j + 1] = Pixels[i + 1];
            rgba[j + 2] = Pixels[i + 2];
            rgba[j + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        return bitmap;
    }

    /// <summary>PNG bytes.</summary>
    public byte[] EncodePng()
    {
        using var bitmap = ToBitmap();
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
