using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Imaging;

/// <summary>Renders an attention heatmap as a coloured overlay on an image (jet colour map: blue = low, red = high).</summary>
internal static class HeatmapRenderer
{
    /// <summary>
    /// Blends the colour-mapped <paramref name="heatmap"/> ([H', W'], any range: it is min–max normalised and resized
    /// bilinearly to the image) over <paramref name="image"/>: out = (1 − α)·image + α·colour.
    /// </summary>
    /// <exception cref="ArgumentException">The heatmap is not 2-D, or α is outside [0, 1].</exception>
    public static RgbImage Overlay(RgbImage image, torch.Tensor heatmap, double alpha = 0.5)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(heatmap);
        if (heatmap.dim() != 2) throw new ArgumentException($"A heatmap must be [H, W]; got [{string.Join(", ", heatmap.shape)}].", nameof(heatmap));
        if (!(alpha >= 0 && alpha <= 1)) throw new ArgumentException($"alpha must be in [0, 1]; got {alpha}.", nameof(alpha));
        var values = Resample(heatmap, image.Width, image.Height);
        var dst = new byte[image.Pixels.Length];
        for (int i = 0; i < values.Length; i++)
        {
            var (r, g, b) = Jet(values[i]);
            dst[i * 3] = Blend(image.Pixels[i * 3], r, alpha);
            dst[i * 3 + 1] = Blend(image.Pixels[i * 3 + 1], g, alpha);
            dst[i * 3 + 2] = Blend(image.Pixels[i * 3 + 2], b, alpha);
        }
        return new RgbImage(image.Width, image.Height, dst);
    }

    /// <summary>The heatmap alone, colour-mapped, at <paramref name="width"/> × <paramref name="height"/>.</summary>
    public static RgbImage Render(torch.Tensor heatmap, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(heatmap);
        if (heatmap.dim() != 2) throw new ArgumentException($"A heatmap must be [H, W]; got [{string.Join(", ", heatmap.shape)}].", nameof(heatmap));
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var values = Resample(heatmap, width, height);
        var dst = new byte[values.Length * 3];
        for (int i = 0; i < values.Length; i++) (dst[i * 3], dst[i * 3 + 1], dst[i * 3 + 2]) = Jet(values[i]);
        return new RgbImage(width, height, dst);
    }

    /// <summary>Scales each [..., H, W] map independently to [0, 1] (min–max; a constant map becomes 0).</summary>
    public static torch.Tensor Normalize(torch.Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.dim() < 2) throw new ArgumentException("Maps must have at least two dimensions (H, W).", nameof(maps));
        using var scope = torch.NewDisposeScope();
        var flat = maps.to_type(torch.ScalarType.Float32).flatten(-2);
        var min = flat.amin([-1], keepdim: true);
        var range = flat.amax([-1], keepdim: true).sub(min);
        var scaled = flat.sub(min).div(range.clamp_min(Kept(1e-12)));
        return scaled.view(maps.shape).MoveToOuterDisposeScope();
    }

    private static float[] Resample(torch.Tensor heatmap, int width, int height)
    {
        using var scope = torch.NewDisposeScope();
        var map = Normalize(heatmap.detach()).unsqueeze(0).unsqueeze(0);
        if (map.shape[2] != height || map.shape[3] != width)
            map = torch.nn.functional.interpolate(map, size: [height, width], mode: torch.InterpolationMode.Bilinear, align_corners: false);
        return map.clamp(Kept(0), Kept(1)).contiguous().cpu().data<float>().ToArray();
    }

    // Classic jet: piecewise-linear blue -> cyan -> yellow -> red.
    private static (byte R, byte G, byte B) Jet(float v)
    {
        static byte Channel(double x) => (byte)Math.Round(255 * Math.Clamp(1.5 - Math.Abs(x), 0, 1));
        return (Channel(4 * v - 3), Channel(4 * v - 2), Channel(4 * v - 1));
    }

    private static byte Blend(byte under, byte over, double alpha) => (byte)Math.Round((1 - alpha) * under + alpha * over);
}
