using AttnDreamBooth.IO;
using SkiaSharp;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Imaging;

/// <summary>Conversions of <see cref="RgbImage"/> to and from tensors and PNG.</summary>
internal static class RgbImageConversions
{
    /// <summary>
    /// Turns a [3, H, W] (or [1, 3, H, W]) tensor with values in [−1, 1] — a VAE-decoded image — into an RGB image:
    /// (x / 2 + 0.5) clamped to [0, 1], × 255, rounded (as diffusers' post-processing).
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not [3, H, W] or [1, 3, H, W].</exception>
    public static RgbImage FromTensor(torch.Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var scope = torch.NewDisposeScope();
        var t = image.dim() == 4 && image.shape[0] == 1 ? image[0] : image;
        if (t.dim() != 3 || t.shape[0] != 3)
            throw new ArgumentException($"An image tensor must be [3, H, W] or [1, 3, H, W]; got [{string.Join(", ", image.shape)}].", nameof(image));
        int h = (int)t.shape[1], w = (int)t.shape[2];
        var hwc = t.detach().to_type(torch.float32).div(Kept(2)).add(Kept(0.5), One).clamp(Kept(0), Kept(1)).mul(Kept(255)).round().to_type(torch.uint8).permute(1, 2, 0).contiguous().cpu();
        return new RgbImage(w, h, hwc.data<byte>().ToArray());
    }

    /// <summary>The image as an opaque Skia image (for drawing; the caller disposes it).</summary>
    public static SKImage ToSkImage(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i];
            rgba[j + 1] = image.Pixels[i + 1];
            rgba[j + 2] = image.Pixels[i + 2];
            rgba[j + 3] = 255;
        }
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        return SKImage.FromPixelCopy(info, rgba) ?? throw new InvalidOperationException("SkiaSharp could not wrap the image.");
    }

    /// <summary>The image encoded as PNG.</summary>
    public static byte[] EncodePng(this RgbImage image)
    {
        using var skImage = image.ToSkImage();
        using var data = skImage.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException("SkiaSharp could not encode the image as PNG.");
        return data.ToArray();
    }

    /// <summary>Writes the image as a PNG file atomically (temporary file + rename).</summary>
    public static void SavePng(this RgbImage image, string path)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        byte[] png = image.EncodePng();
        AtomicFile.Write(path, s => s.Write(png));
    }
}
