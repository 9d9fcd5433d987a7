using AttnDreamBooth.Imaging;
using SkiaSharp;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Draws a <see cref="Scene"/> with SkiaSharp (anti-aliased, CPU raster): the background, then each object (fill,
/// pattern clipped to the silhouette, a concept's outline and emblem). A pure function of the scene and the size:
/// the same scene gives the same pixels. Thread-safe.
/// </summary>
public static class ShapesRenderer
{
    /// <summary>Largest accepted image side.</summary>
    public const int MaxSize = 2048;

    /// <summary>Renders <paramref name="scene"/> as a <paramref name="size"/> × <paramref name="size"/> image with its object masks.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not in [8, <see cref="MaxSize"/>].</exception>
    /// <exception cref="InvalidShapesSpecException">An object's geometry is not finite or not positive.</exception>
    public static ShapesRendering Render(Scene scene, int size = 64)
    {
        ArgumentNullException.ThrowIfNull(scene);
        if (size < 8 || size > MaxSize) throw new ArgumentOutOfRangeException(nameof(size), size, $"The image side must be in [8, {MaxSize}].");
        for (int i = 0; i < scene.Objects.Count; i++)
        {
            var o = scene.Objects[i];
            if (!double.IsFinite(o.CenterX) || !double.IsFinite(o.CenterY) || !double.IsFinite(o.Side) || o.Side <= 0 || o.Side > 2)
                throw new InvalidShapesSpecException("scene", $"objects[{i}] has invalid geometry (centre {o.CenterX}, {o.CenterY}; side {o.Side})");
        }

        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            BackgroundPainter.Paint(canvas, scene.Background, scene.BackgroundSeed, size);
            foreach (var obj in scene.Objects) DrawObject(canvas, obj, size);
        }
        var image = ToRgb(bitmap);
        var masks = scene.Objects.Select(o => new ObjectMask(size, size, Mask(o, size, size))).ToArray();
        return new ShapesRendering(image, scene, masks);
    }

    /// <summary>The object's outline path in pixel coordinates: the spec's path with its tight bounds centred on the object's centre and its longer side scaled to the object's side.</summary>
    internal static SKPath ObjectPath(ShapeSpec shape, double centerX, double centerY, double side, int size)
    {
        var path = SKPath.ParseSvgPathData(shape.Path) ?? throw new InvalidShapesSpecException("shape " + shape.Name, "path is not valid SVG path data");
        path.FillType = shape.EvenOdd ? SKPathFillType.EvenOdd : SKPathFillType.Winding;
        var b = path.TightBounds;
        float scale = (float)(side * size / Math.Max(b.Width, b.Height));
        var m = SKMatrix.CreateTranslation(-b.MidX, -b.MidY)
            .PostConcat(SKMatrix.CreateScale(scale, scale))
            .PostConcat(SKMatrix.CreateTranslation((float)(centerX * size), (float)(centerY * size)));
        path.Transform(m);
        return path;
    }

    private static void DrawObject(SKCanvas canvas, SceneObject obj, int size)
    {
        using var path = ObjectPath(obj.Shape, obj.CenterX, obj.CenterY, obj.Side, size);
        var concept = obj.Concept;
        RgbColor fill = concept?.Primary ?? obj.Color.Fill, ink = concept?.Secondary ?? obj.Color.Ink;
        var pattern = concept?.Pattern ?? obj.Pattern;
        float sidePx = (float)(obj.Side * size), cx = (float)(obj.CenterX * size), cy = (float)(obj.CenterY * size);

        canvas.Save();
        canvas.ClipPath(path, SKClipOperation.Intersect, antialias: true);
        canvas.Clear(BackgroundPainter.ToSk(fill));
        PaintPattern(canvas, pattern, ink, cx, cy, sidePx);
        canvas.Restore();

        if (concept is not null)
        {
            if (concept.OutlineWidth > 0)
            {
                using var stroke = new SKPaint
                {
                    Color = BackgroundPainter.ToSk(concept.Outline), IsAntialias = true, Style = SKPaintStyle.Stroke,
                    StrokeWidth = (float)(concept.OutlineWidth * sidePx), StrokeJoin = SKStrokeJoin.Round,
                };
                canvas.DrawPath(path, stroke);
            }
            if (concept.Emblem is { } emblem)
            {
                using var emblemPath = ObjectPath(emblem, obj.CenterX, obj.CenterY, obj.Side * concept.EmblemSize, size);
                using var paint = new SKPaint { Color = BackgroundPainter.ToSk(concept.EmblemColor), IsAntialias = true, Style = SKPaintStyle.Fill };
                canvas.DrawPath(emblemPath, paint);
            }
        }
    }

    /// <summary>Lays the pattern's ink over the whole box, anchored at the object's centre so every object shows the same phase.</summary>
    private static void PaintPattern(SKCanvas canvas, PatternSpec pattern, RgbColor ink, float cx, float cy, float side)
    {
        if (pattern.Kind == PatternKind.Solid) return;
        float p = (float)(pattern.Period * side);
        using var paint = new SKPaint { Color = BackgroundPainter.ToSk(ink), IsAntialias = true, Style = SKPaintStyle.Fill };
        int n = (int)Math.Ceiling(side / p) + 1;
        switch (pattern.Kind)
        {
            case PatternKind.Stripes:
                for (int k = -n; k <= n; k++)
                    canvas.DrawRect(cx - side, cy + k * p - p / 4, 2 * side, p / 2, paint);
                break;
            case PatternKind.Dots:
                for (int i = -n; i <= n; i++)
                    for (int j = -n; j <= n; j++)
                        canvas.DrawCircle(cx + i * p, cy + j * p, 0.3f * p, paint);
                break;
            case PatternKind.Checker:
                float c = p / 2;
                for (int i = -2 * n; i <= 2 * n; i++)
                    for (int j = -2 * n; j <= 2 * n; j++)
                        if (((i + j) & 1) == 0) canvas.DrawRect(cx + i * c, cy + j * c, c, c, paint);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(pattern), $"Unknown pattern kind {pattern.Kind}.");
        }
    }

    /// <summary>The object's silhouette coverage on a <paramref name="width"/> × <paramref name="height"/> canvas (geometry relative to the longer side).</summary>
    internal static byte[] Mask(SceneObject obj, int width, int height)
    {
        int size = Math.Max(width, height);
        var info = new SKImageInfo(width, height, SKColorType.Alpha8, SKAlphaType.Premul);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Transparent);
            using var path = ObjectPath(obj.Shape, obj.CenterX, obj.CenterY, obj.Side, size);
            using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true, Style = SKPaintStyle.Fill };
            canvas.DrawPath(path, paint);
            if (obj.Concept is { OutlineWidth: > 0 } concept)
            {
                paint.Style = SKPaintStyle.Stroke;
                paint.StrokeWidth = (float)(concept.OutlineWidth * obj.Side * size);
                paint.StrokeJoin = SKStrokeJoin.Round;
                canvas.DrawPath(path, paint);
            }
        }
        var coverage = new byte[width * height];
        var span = bitmap.GetPixelSpan();
        for (int y = 0; y < height; y++) span.Slice(y * bitmap.RowBytes, width).CopyTo(coverage.AsSpan(y * width, width));
        return coverage;
    }

    /// <summary>The RGB bytes of an opaque RGBA8888 bitmap (alpha dropped).</summary>
    internal static RgbImage ToRgb(SKBitmap bitmap)
    {
        int w = bitmap.Width, h = bitmap.Height;
        var rgb = new byte[w * h * 3];
        var span = bitmap.GetPixelSpan();
        for (int y = 0; y < h; y++)
        {
            var row = span.Slice(y * bitmap.RowBytes, w * 4);
            for (int x = 0; x < w; x++)
            {
                int o = (y * w + x) * 3;
                rgb[o] = row[x * 4];
                rgb[o + 1] = row[x * 4 + 1];
                rgb[o + 2] = row[x * 4 + 2];
            }
        }
        return new RgbImage(w, h, rgb);
    }
}
