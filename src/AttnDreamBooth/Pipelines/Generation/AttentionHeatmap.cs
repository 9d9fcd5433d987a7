namespace AttnDreamBooth.Pipelines.Generation;

/// <summary>
/// A token's cross-attention, averaged over heads, layers and denoising steps, on a square grid and normalised
/// to [0, 1] — the kind of map the paper's figures show.
/// </summary>
public sealed class AttentionHeatmap
{
    /// <summary>Creates a heatmap from row-major values on a <paramref name="resolution"/>² grid.</summary>
    public AttentionHeatmap(string token, int resolution, float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != resolution * resolution) throw new ArgumentException($"Expected {resolution * resolution} values, got {values.Length}.", nameof(values));
        Token = token;
        Resolution = resolution;
        Values = values;
    }

    /// <summary>The token as requested.</summary>
    public string Token { get; }

    /// <summary>Grid side length.</summary>
    public int Resolution { get; }

    /// <summary>Row-major values in [0, 1].</summary>
    public float[] Values { get; }

    /// <summary>The map upsampled (bilinear) to the image size, coloured with a jet palette and blended over it.</summary>
    public RgbImage RenderOverlay(RgbImage image, float opacity = 0.55f)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!(opacity >= 0 && opacity <= 1)) throw new ArgumentOutOfRangeException(nameof(opacity), opacity, "must be in [0, 1]");
        var result = new byte[image.Pixels.Length];
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                float v = Sample((x + 0.5f) / image.Width * Resolution - 0.5f, (y + 0.5f) / image.Height * Resolution - 0.5f);
                var (r, g, b) = Jet(v);
                int i = (y * image.Width + x) * 3;
                result[i] = Blend(image.Pixels[i], r, opacity);
                result[i + 1] = Blend(image.Pixels[i + 1], g, opacity);
                result[i + 2] = Blend(image.Pixels[i + 2], b, opacity);
            }
        }
        return new RgbImage(image.Width, image.Height, result);
    }

    /// <summary>The map alone, coloured, at <paramref name="size"/>² pixels.</summary>
    public RgbImage Render(int size = 256)
    {
        var blank = new RgbImage(size, size, new byte[size * size * 3]);
        return RenderOverlay(blank, 1f);
    }

    private float Sample(float fx, float fy)
    {
        fx = Math.Clamp(fx, 0, Resolution - 1);
        fy = Math.Clamp(fy, 0, Resolution - 1);
        int x0 = (int)fx, y0 = (int)fy;
        int x1 = Math.Min(x0 + 1, Resolution - 1), y1 = Math.Min(y0 + 1, Resolution - 1);
        float ax = fx - x0, ay = fy - y0;
        float top = Values[y0 * Resolution + x0] * (1 - ax) + Values[y0 * Resolution + x1] * ax;
        float bottom = Values[y1 * Resolution + x0] * (1 - ax) + Values[y1 * Resolution + x1] * ax;
        return top * (1 - ay) + bottom * ay;
    }

    private static (byte R, byte G, byte B) Jet(float v)
    {
        v = Math.Clamp(v, 0, 1);
        static byte C(float x) => (byte)Math.Round(255 * Math.Clamp(x, 0, 1));
        return (C(1.5f - Math.Abs(4 * v - 3)), C(1.5f - Math.Abs(4 * v - 2)), C(1.5f - Math.Abs(4 * v - 1)));
    }

    private static byte Blend(byte under, byte over, float opacity) => (byte)Math.Round(under * (1 - opacity) + over * opacity);
}
