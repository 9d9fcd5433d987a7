using SkiaSharp;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Each shape's silhouette on a small canonical grid (bounds centred, longer side fixed), and the IoU of an observed
/// silhouette resampled onto the same grid. Shapes are never rotated in the world, so plain template matching is
/// exact on renders and degrades gracefully on blurry generated images.
/// </summary>
internal sealed class ShapeTemplates
{
    public const int Grid = 32;
    private const double Side = 28;
    private readonly (ShapeSpec Shape, bool[] Cells)[] _templates;

    public ShapeTemplates(IReadOnlyList<ShapeSpec> shapes)
    {
        _templates = [.. shapes.Select(s => (s, Rasterize(s)))];
    }

    /// <summary>Resamples the mask's object (bounds <paramref name="b"/>) onto the grid and ranks the shapes by IoU.</summary>
    public (ShapeSpec Shape, double IoU)[] Rank(bool[] mask, int width, int height, PixelBounds b)
    {
        var cells = new bool[Grid * Grid];
        double scale = b.LongerSide / Side;
        for (int v = 0; v < Grid; v++)
            for (int u = 0; u < Grid; u++)
            {
                int x = (int)Math.Floor(b.CenterX + (u + 0.5 - Grid / 2.0) * scale);
                int y = (int)Math.Floor(b.CenterY + (v + 0.5 - Grid / 2.0) * scale);
                cells[v * Grid + u] = (uint)x < (uint)width && (uint)y < (uint)height && mask[y * width + x];
            }
        return [.. _templates.Select(t => (t.Shape, IoU(cells, t.Cells))).OrderByDescending(r => r.Item2)];
    }

    public double IoU(ShapeSpec shape, bool[] mask, int width, int height, PixelBounds b) =>
        Rank(mask, width, height, b).First(r => r.Shape == shape).IoU;

    private static double IoU(bool[] a, bool[] b)
    {
        int inter = 0, union = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] && b[i]) inter++;
            if (a[i] || b[i]) union++;
        }
        return union == 0 ? 0 : inter / (double)union;
    }

    private static bool[] Rasterize(ShapeSpec shape)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(Grid, Grid, SKColorType.Alpha8, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Transparent);
            using var path = ShapesRenderer.ObjectPath(shape, 0.5, 0.5, Side / Grid, Grid);
            using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
            canvas.DrawPath(path, paint);
        }
        var span = bitmap.GetPixelSpan();
        var cells = new bool[Grid * Grid];
        for (int y = 0; y < Grid; y++)
            for (int x = 0; x < Grid; x++)
                cells[y * Grid + x] = span[y * bitmap.RowBytes + x] >= 128;
        return cells;
    }
}
