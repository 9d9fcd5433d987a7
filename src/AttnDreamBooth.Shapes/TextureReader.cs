namespace AttnDreamBooth.Shapes;

/// <summary>Reads the pattern kind from the layout of fill/ink labels inside an object (phase-invariant, so it also works on generated images whose pattern is shifted).</summary>
internal static class TextureReader
{
    // Below this ink share an object is solid (anti-aliasing and noise give a few per cent at most).
    private const double SolidBelow = 0.06;

    // Dots cover π·0.3² ≈ 0.28 of their cells, stripes and checkers half: split in between.
    private const double CheckerAbove = 0.38;

    /// <summary>
    /// Labels each inner pixel (value in <paramref name="inner"/> ≥ 0 is its blend parameter t along fill→ink, &lt; 0 is
    /// outside) and measures ink share and label changes along rows and columns.
    /// </summary>
    public static TextureStatistics Measure(double[] inner, int width, int height)
    {
        int n = 0, ink = 0, hPairs = 0, hChanges = 0, vPairs = 0, vChanges = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double t = inner[y * width + x];
                if (t < 0) continue;
                n++;
                bool isInk = t > 0.5;
                if (isInk) ink++;
                if (x + 1 < width && inner[y * width + x + 1] is var r && r >= 0)
                {
                    hPairs++;
                    if ((r > 0.5) != isInk) hChanges++;
                }
                if (y + 1 < height && inner[(y + 1) * width + x] is var d && d >= 0)
                {
                    vPairs++;
                    if ((d > 0.5) != isInk) vChanges++;
                }
            }
        return new TextureStatistics(n == 0 ? 0 : ink / (double)n, hPairs == 0 ? 0 : hChanges / (double)hPairs, vPairs == 0 ? 0 : vChanges / (double)vPairs, n);
    }

    public static PatternKind Classify(TextureStatistics s)
    {
        if (s.InkFraction < SolidBelow || s.InkFraction > 1 - SolidBelow) return PatternKind.Solid;
        // Horizontal stripes keep their label along a row and flip down a column.
        if (s.VerticalChange > 2 * s.HorizontalChange + 0.03) return PatternKind.Stripes;
        return s.InkFraction >= CheckerAbove ? PatternKind.Checker : PatternKind.Dots;
    }
}
