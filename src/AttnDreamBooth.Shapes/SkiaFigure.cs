using AttnDreamBooth.Imaging;
using SkiaSharp;

namespace AttnDreamBooth.Shapes;

/// <summary>What every SkiaSharp figure of the Shapes world shares: a white canvas, images drawn without smoothing, PNG out.</summary>
internal static class SkiaFigure
{
    /// <summary>A white drawing surface (the caller disposes it).</summary>
    public static SKSurface Create(int width, int height)
    {
        var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException("SkiaSharp could not create a drawing surface.");
        surface.Canvas.Clear(SKColors.White);
        return surface;
    }

    /// <summary>Draws <paramref name="image"/> into <paramref name="target"/>; nearest-neighbour, so the model's pixels stay visible.</summary>
    public static void DrawImage(SKCanvas canvas, RgbImage image, SKRect target)
    {
        using var paint = new SKPaint { FilterQuality = SKFilterQuality.None };
        // Through PNG (lossless): the library's public image type carries no Skia conversion.
        using var skImage = SKImage.FromEncodedData(image.EncodePng()) ?? throw new InvalidOperationException("SkiaSharp could not read the image back.");
        canvas.DrawImage(skImage, target, paint);
    }

    /// <summary>A sans-serif face if the machine has one (small labels read better), else Skia's default (the caller disposes it).</summary>
    public static SKTypeface Sans() =>
        SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.FromFamilyName("sans-serif") ?? SKTypeface.Default;

    public static byte[] EncodePng(SKSurface surface)
    {
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100) ?? throw new InvalidOperationException("SkiaSharp could not encode the figure as PNG.");
        return data.ToArray();
    }
}
