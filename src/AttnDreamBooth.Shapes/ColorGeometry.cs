using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Distances in RGB space between colours and colour segments. Anti-aliasing and gradients only ever produce blends
/// of two drawn colours, i.e. points on the segment between them, so "how far is this pixel from anything the
/// background could produce" is a distance to a set of segments.
/// </summary>
internal static class ColorGeometry
{
    public static double Distance(RgbColor a, RgbColor b)
    {
        double dr = a.R - b.R, dg = a.G - b.G, db = a.B - b.B;
        return Math.Sqrt(dr * dr + dg * dg + db * db);
    }

    /// <summary>Distance from (r, g, b) to the segment a–b, and the blend parameter t ∈ [0, 1] of the closest point (0 at a).</summary>
    public static double DistanceToSegment(double r, double g, double b, RgbColor a, RgbColor c, out double t)
    {
        double ux = c.R - a.R, uy = c.G - a.G, uz = c.B - a.B;
        double vx = r - a.R, vy = g - a.G, vz = b - a.B;
        double len2 = ux * ux + uy * uy + uz * uz;
        t = len2 == 0 ? 0 : Math.Clamp((ux * vx + uy * vy + uz * vz) / len2, 0, 1);
        double dx = vx - t * ux, dy = vy - t * uy, dz = vz - t * uz;
        return Math.Sqrt(dx * dx + dy * dy + dz * dz);
    }

    public static double DistanceToSegment(double r, double g, double b, RgbColor a, RgbColor c) => DistanceToSegment(r, g, b, a, c, out _);

    /// <summary>Smallest distance between two segments (sampled finely along the first; exact along the second).</summary>
    public static double SegmentDistance(RgbColor a0, RgbColor a1, RgbColor b0, RgbColor b1)
    {
        const int steps = 128;
        double best = double.MaxValue;
        for (int i = 0; i <= steps; i++)
        {
            double s = i / (double)steps;
            double r = a0.R + s * (a1.R - a0.R), g = a0.G + s * (a1.G - a0.G), b = a0.B + s * (a1.B - a0.B);
            best = Math.Min(best, DistanceToSegment(r, g, b, b0, b1));
        }
        return best;
    }

    /// <summary>Distance from (r, g, b) to the nearest of <paramref name="segments"/>.</summary>
    public static double DistanceToSegments(double r, double g, double b, IReadOnlyList<(RgbColor A, RgbColor B)> segments)
    {
        double best = double.MaxValue;
        foreach (var (a, c) in segments) best = Math.Min(best, DistanceToSegment(r, g, b, a, c));
        return best;
    }

    /// <summary>The point of <paramref name="segments"/> nearest to (r, g, b).</summary>
    public static (double R, double G, double B) NearestPoint(double r, double g, double b, IReadOnlyList<(RgbColor A, RgbColor B)> segments)
    {
        double best = double.MaxValue;
        (double, double, double) point = default;
        foreach (var (a, c) in segments)
        {
            double d = DistanceToSegment(r, g, b, a, c, out double t);
            if (d < best)
            {
                best = d;
                point = (a.R + t * (c.R - a.R), a.G + t * (c.G - a.G), a.B + t * (c.B - a.B));
            }
        }
        return point;
    }

    public static RgbColor Scale(RgbColor c, double f) =>
        new((byte)Math.Clamp(Math.Round(c.R * f), 0, 255), (byte)Math.Clamp(Math.Round(c.G * f), 0, 255), (byte)Math.Clamp(Math.Round(c.B * f), 0, 255));
}
