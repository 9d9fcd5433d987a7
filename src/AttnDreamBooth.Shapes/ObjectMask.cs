namespace AttnDreamBooth.Shapes;

/// <summary>An object's anti-aliased silhouette: per-pixel coverage 0–255, row-major, <see cref="Width"/> × <see cref="Height"/>.</summary>
public sealed class ObjectMask
{
    /// <summary>Wraps <paramref name="coverage"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The buffer is not width × height bytes.</exception>
    public ObjectMask(int width, int height, byte[] coverage)
    {
        ArgumentNullException.ThrowIfNull(coverage);
        if (width <= 0 || height <= 0 || coverage.LongLength != (long)width * height)
            throw new ArgumentException($"A {width}x{height} mask needs {(long)width * height} bytes; got {coverage.LongLength}.", nameof(coverage));
        Width = width;
        Height = height;
        Coverage = coverage;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Coverage per pixel (255 = fully inside).</summary>
    public byte[] Coverage { get; }

    /// <summary>Whether the pixel is at least half covered.</summary>
    public bool Contains(int x, int y) => (uint)x < (uint)Width && (uint)y < (uint)Height && Coverage[y * Width + x] >= 128;

    /// <summary>Covered area in pixels (coverage-weighted).</summary>
    public double Area => Coverage.Sum(c => (double)c) / 255.0;

    /// <summary>Coverage-weighted centroid in pixels (pixel centres at +0.5); (NaN, NaN) for an empty mask.</summary>
    public (double X, double Y) Centroid
    {
        get
        {
            double sum = 0, sx = 0, sy = 0;
            for (int y = 0; y < Height; y++)
                for (int x = 0; x < Width; x++)
                {
                    double c = Coverage[y * Width + x];
                    sum += c;
                    sx += c * (x + 0.5);
                    sy += c * (y + 0.5);
                }
            return sum == 0 ? (double.NaN, double.NaN) : (sx / sum, sy / sum);
        }
    }

    /// <summary>Intersection over union of the half-covered pixels of two masks of the same size.</summary>
    /// <exception cref="ArgumentException">The sizes differ.</exception>
    public double IoU(ObjectMask other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Width != Width || other.Height != Height) throw new ArgumentException($"Mask sizes differ: {Width}x{Height} vs {other.Width}x{other.Height}.", nameof(other));
        int inter = 0, union = 0;
        for (int i = 0; i < Coverage.Length; i++)
        {
            bool a = Coverage[i] >= 128, b = other.Coverage[i] >= 128;
            if (a && b) inter++;
            if (a || b) union++;
        }
        return union == 0 ? 0 : inter / (double)union;
    }
}
