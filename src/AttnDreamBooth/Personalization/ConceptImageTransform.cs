using AttnDreamBooth.Imaging;
using AttnDreamBooth.Training;
using SkiaSharp;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The training-image transform, in the official order: random rotation (canvas expanded, black corners) → resize of
/// the shorter side to the resolution → horizontal flip → random (or center) square crop → [3, H, W] float tensor in
/// [−1, 1]. Every random draw comes from the caller's <see cref="SeededRandom"/>, in a fixed order: rotation coin,
/// angle (only when rotating), flip coin, crop top, crop left — a draw is made only for an enabled augmentation.
/// </summary>
internal static class ConceptImageTransform
{
    /// <summary>
    /// Augments <paramref name="image"/> and crops it to a <paramref name="resolution"/>² square. With
    /// <paramref name="random"/> null nothing random happens: no rotation, no flip, center crop.
    /// </summary>
    public static RgbImage Augment(RgbImage image, int resolution, ImageAugmentationOptions augmentation, SeededRandom? random)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(augmentation);
        ArgumentOutOfRangeException.ThrowIfLessThan(resolution, 1);
        var current = image;
        if (random is not null && augmentation.RotationProbability > 0 && augmentation.MaxRotationDegrees > 0 && random.NextBool(augmentation.RotationProbability))
            current = Rotate(current, random.NextDouble(-augmentation.MaxRotationDegrees, augmentation.MaxRotationDegrees));
        current = ResizeShorterSide(current, resolution);
        if (random is not null && augmentation.HorizontalFlipProbability > 0 && random.NextBool(augmentation.HorizontalFlipProbability))
            current = FlipHorizontal(current);
        int top, left;
        if (random is not null && augmentation.RandomCrop)
        {
            top = random.NextInt(current.Height - resolution + 1);
            left = random.NextInt(current.Width - resolution + 1);
        }
        else
        {
            // Midpoint rounded half to even, as torchvision's CenterCrop.
            top = (int)Math.Round((current.Height - resolution) / 2.0, MidpointRounding.ToEven);
            left = (int)Math.Round((current.Width - resolution) / 2.0, MidpointRounding.ToEven);
        }
        return Crop(current, left, top, resolution, resolution);
    }

    /// <summary>Rotates counter-clockwise by <paramref name="degrees"/>, growing the canvas to hold the whole image;
    /// uncovered areas are black. Bilinear sampling.</summary>
    public static RgbImage Rotate(RgbImage image, double degrees)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!double.IsFinite(degrees)) throw new ArgumentOutOfRangeException(nameof(degrees), degrees, "The angle must be finite.");
        if (degrees == 0) return image;
        double rad = degrees * Math.PI / 180.0;
        double cos = Math.Abs(Math.Cos(rad)), sin = Math.Abs(Math.Sin(rad));
        // The small epsilon keeps exact multiples of 90° from gaining a pixel to floating-point noise.
        int w = Math.Max(1, (int)Math.Ceiling(image.Width * cos + image.Height * sin - 1e-6));
        int h = Math.Max(1, (int)Math.Ceiling(image.Width * sin + image.Height * cos - 1e-6));
        using var source = ToBitmap(image);
        using var target = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(target))
        using (var paint = new SKPaint { FilterQuality = SKFilterQuality.Medium, IsAntialias = true })
        {
            canvas.Clear(SKColors.Black);
            canvas.Translate(w / 2f, h / 2f);
            canvas.RotateDegrees((float)-degrees); // y points down in Skia: a negative angle turns counter-clockwise on screen
            canvas.Translate(-image.Width / 2f, -image.Height / 2f);
            canvas.DrawBitmap(source, 0, 0, paint);
            canvas.Flush();
        }
        return FromBitmap(target);
    }

    /// <summary>Scales so the shorter side equals <paramref name="size"/> (the longer side is truncated, as
    /// torchvision's <c>Resize(int)</c>), with high-quality filtering.</summary>
    public static RgbImage ResizeShorterSide(RgbImage image, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        int w, h;
        if (image.Width <= image.Height)
        {
            w = size;
            h = Math.Max(size, (int)((long)size * image.Height / image.Width));
        }
        else
        {
            h = size;
            w = Math.Max(size, (int)((long)size * image.Width / image.Height));
        }
        if (w == image.Width && h == image.Height) return image;
        using var source = ToBitmap(image);
        using var resized = source.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul), SKFilterQuality.High)
            ?? throw new InvalidOperationException($"SkiaSharp could not resize a {image.Width}x{image.Height} image to {w}x{h}.");
        return FromBitmap(resized);
    }

    /// <summary>Mirrors left–right.</summary>
    public static RgbImage FlipHorizontal(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int w = image.Width, h = image.Height;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < h; y++)
        {
            int row = y * w * 3;
            for (int x = 0; x < w; x++)
            {
                int s = row + x * 3, d = row + (w - 1 - x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(w, h, dst);
    }

    /// <summary>The <paramref name="width"/> × <paramref name="height"/> region at (<paramref name="left"/>, <paramref name="top"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The region is not inside the image.</exception>
    public static RgbImage Crop(RgbImage image, int left, int top, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (left < 0 || top < 0 || width < 1 || height < 1 || left + width > image.Width || top + height > image.Height)
            throw new ArgumentOutOfRangeException(nameof(left), $"The crop {width}x{height} at ({left}, {top}) is not inside the {image.Width}x{image.Height} image.");
        var dst = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            Array.Copy(image.Pixels, ((top + y) * image.Width + left) * 3, dst, y * width * 3, width * 3);
        return new RgbImage(width, height, dst);
    }

    /// <summary>A float32 tensor [3, H, W] with values (v / 255 − 0.5) / 0.5 ∈ [−1, 1] (the same float32 arithmetic
    /// as torchvision's ToTensor + Normalize(0.5, 0.5)), on <paramref name="device"/> (CPU by default).</summary>
    public static torch.Tensor ToTensor(RgbImage image, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        int plane = image.Width * image.Height;
        var data = new float[3 * plane];
        var px = image.Pixels;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++)
                data[c * plane + i] = (px[i * 3 + c] / 255f - 0.5f) / 0.5f;
        }
        var t = torch.tensor(data, [3L, image.Height, image.Width], torch.float32);
        return device is null || device.type == DeviceType.CPU ? t : t.to(device);
    }

    private static unsafe SKBitmap ToBitmap(RgbImage image)
    {
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        byte* dst = (byte*)bitmap.GetPixels();
        int rowBytes = bitmap.RowBytes;
        var src = image.Pixels;
        for (int y = 0; y < image.Height; y++)
        {
            byte* row = dst + (long)y * rowBytes;
            int s = y * image.Width * 3;
            for (int x = 0; x < image.Width; x++, s += 3)
            {
                row[x * 4] = src[s];
                row[x * 4 + 1] = src[s + 1];
                row[x * 4 + 2] = src[s + 2];
                row[x * 4 + 3] = 255;
            }
        }
        bitmap.NotifyPixelsChanged();
        return bitmap;
    }

    private static unsafe RgbImage FromBitmap(SKBitmap bitmap)
    {
        if (bitmap.ColorType != SKColorType.Rgba8888) throw new InvalidOperationException($"Expected an RGBA bitmap; got {bitmap.ColorType}.");
        int w = bitmap.Width, h = bitmap.Height, rowBytes = bitmap.RowBytes;
        byte* src = (byte*)bitmap.GetPixels();
        var dst = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            byte* row = src + (long)y * rowBytes;
            int d = y * w * 3;
            for (int x = 0; x < w; x++, d += 3)
            {
                // Everything drawn is opaque (black canvas, opaque source), so premultiplied values are the colours.
                dst[d] = row[x * 4];
                dst[d + 1] = row[x * 4 + 1];
                dst[d + 2] = row[x * 4 + 2];
            }
        }
        return new RgbImage(w, h, dst);
    }
}
