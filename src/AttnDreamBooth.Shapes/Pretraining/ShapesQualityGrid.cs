using AttnDreamBooth.Imaging;
using AttnDreamBooth.IO;
using SkiaSharp;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// A picture of a quality measurement: one row per held-out prompt (the first <see cref="Prompts"/>), one column per seed,
/// each image labelled with what the analyzer measured against what the prompt asked for (a green tick per attribute read
/// as asked, a red cross with "asked → measured" otherwise), the prompt under its row.
/// Pass <see cref="Add"/> as the measurement's <c>onImage</c> so the grid shows the very images and verdicts the report
/// counts; it keeps only the images of its own prompts.
/// </summary>
public sealed class ShapesQualityGrid
{
    private readonly List<QualityImage> _images = [];

    /// <summary>Creates an empty grid of the first <paramref name="prompts"/> prompts.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="prompts"/> is not in [1, <see cref="MaxPrompts"/>].</exception>
    public ShapesQualityGrid(int prompts)
    {
        if (prompts is < 1 or > MaxPrompts)
            throw new ArgumentOutOfRangeException(nameof(prompts), prompts, $"A quality grid shows 1 to {MaxPrompts} prompts.");
        Prompts = prompts;
    }

    /// <summary>The most prompts one grid shows (beyond that the picture is too tall to read or to encode).</summary>
    public const int MaxPrompts = 100;

    /// <summary>How many of the first prompts the grid shows.</summary>
    public int Prompts { get; }

    /// <summary>The images kept, in the order received.</summary>
    public IReadOnlyList<QualityImage> Images => _images;

    /// <summary>Keeps <paramref name="image"/> if its prompt is one of the first <see cref="Prompts"/>; ignores it otherwise.</summary>
    public void Add(QualityImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.PromptIndex >= 0 && image.PromptIndex < Prompts) _images.Add(image);
    }

    /// <summary>Draws the grid.</summary>
    /// <exception cref="InvalidOperationException">No image was added, or the images differ in size.</exception>
    public RgbImage Render()
    {
        using var codec = SKCodec.Create(new SKMemoryStream(RenderPng())) ?? throw new InvalidOperationException("SkiaSharp could not read back the grid.");
        var rgba = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = SKBitmap.Decode(codec, rgba) ?? throw new InvalidOperationException("SkiaSharp could not read back the grid.");
        return ShapesRenderer.ToRgb(bitmap);
    }

    /// <summary>Writes the grid as a PNG file atomically (temporary file + rename).</summary>
    /// <exception cref="InvalidOperationException">No image was added, or the images differ in size.</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        byte[] png = RenderPng();
        AtomicFile.Write(path, s => s.Write(png));
    }

    private byte[] RenderPng()
    {
        if (_images.Count == 0) throw new InvalidOperationException("The quality grid has no images; pass its Add to the measurement first.");
        var rows = _images.GroupBy(i => i.PromptIndex).OrderBy(g => g.Key).Select(g => g.OrderBy(i => i.Sample.Seed).ToList()).ToList();
        var first = _images[0].Image;
        if (_images.Any(i => i.Image.Width != first.Width || i.Image.Height != first.Height))
            throw new InvalidOperationException("The quality grid's images differ in size.");
        var layout = QualityGridLayout.For(rows.Count, rows.Max(r => r.Count), first.Width, first.Height);

        using var surface = SkiaFigure.Create(layout.Width, layout.Height);
        var canvas = surface.Canvas;
        using var typeface = SkiaFigure.Sans();
        using var title = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 13, Typeface = typeface };
        using var prompt = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 12, FakeBoldText = true, Typeface = typeface };
        using var right = new SKPaint { Color = new SKColor(0x15, 0x80, 0x3d), IsAntialias = true, TextSize = 11, Typeface = typeface, StrokeWidth = 1.6f };
        using var wrong = new SKPaint { Color = new SKColor(0xc8, 0x1e, 0x1e), IsAntialias = true, TextSize = 11, Typeface = typeface, StrokeWidth = 1.6f };
        float x0 = QualityGridLayout.Margin, y0 = QualityGridLayout.Margin + 13;
        DrawMark(canvas, true, x0, y0, right);
        canvas.DrawText("measured as asked", x0 + MarkWidth, y0, title);
        x0 += MarkWidth + title.MeasureText("measured as asked") + 16;
        DrawMark(canvas, false, x0, y0, wrong);
        canvas.DrawText("asked → measured by the analyzer", x0 + MarkWidth, y0, title);
        for (int c = 0; c < layout.Columns; c++)
            canvas.DrawText($"seed {rows[0].ElementAtOrDefault(c)?.Sample.Seed ?? c}", layout.CellX(c), QualityGridLayout.Header - 6, title);
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            // ShapesImageGrid tiles the row, so the cells hold exactly the analyzed pixels (integer upscaling, no smoothing).
            var strip = ShapesImageGrid.Compose(row.Select(i => i.Image).ToList(), columns: layout.Columns, layout.Scale, QualityGridLayout.Gap);
            SkiaFigure.DrawImage(canvas, strip, SKRect.Create(layout.CellX(0), layout.CellY(r), strip.Width, strip.Height));
            for (int c = 0; c < row.Count; c++)
            {
                var labels = Labels(row[c].Sample);
                for (int l = 0; l < labels.Count; l++)
                {
                    var paint = labels[l].Right ? right : wrong;
                    DrawMark(canvas, labels[l].Right, layout.CellX(c), layout.LabelBaseline(r, l), paint);
                    canvas.DrawText(labels[l].Text, layout.CellX(c) + MarkWidth, layout.LabelBaseline(r, l), paint);
                }
            }
            var lines = Wrap($"{row[0].PromptIndex + 1}. {row[0].Sample.Prompt}", prompt, layout.Width - 2 * QualityGridLayout.Margin);
            for (int l = 0; l < Math.Min(lines.Count, QualityGridLayout.PromptLines); l++)
                canvas.DrawText(lines[l], QualityGridLayout.Margin, layout.PromptBaseline(r, l), prompt);
        }
        return SkiaFigure.EncodePng(surface);
    }

    /// <summary>One line per measured attribute: "shape star" when the analyzer read what was asked, "shape star → circle"
    /// when not ("none" when it found no object); drawn after a green tick or a red cross.</summary>
    internal static IReadOnlyList<(bool Right, string Text)> Labels(QualitySample sample) =>
        ShapesModelQuality.AttributeNames.Select(name =>
        {
            var (asked, measured) = ShapesModelQuality.Attribute(sample, name);
            bool right = ShapesModelQuality.IsCorrect(sample, name);
            return (right, right ? $"{name} {asked}" : $"{name} {asked} → {measured ?? "none"}");
        }).ToList();

    private const float MarkWidth = 13;

    // Drawn, not typed: fonts without ✓/✗ glyphs (the default on many Linux machines) would show empty boxes.
    private static void DrawMark(SKCanvas canvas, bool right, float x, float baseline, SKPaint paint)
    {
        var stroke = paint.Style;
        paint.Style = SKPaintStyle.Stroke;
        if (right)
        {
            canvas.DrawLine(x + 1, baseline - 4, x + 4, baseline - 1, paint);
            canvas.DrawLine(x + 4, baseline - 1, x + 9, baseline - 8, paint);
        }
        else
        {
            canvas.DrawLine(x + 1.5f, baseline - 8, x + 8.5f, baseline - 1, paint);
            canvas.DrawLine(x + 1.5f, baseline - 1, x + 8.5f, baseline - 8, paint);
        }
        paint.Style = stroke;
    }

    private static List<string> Wrap(string text, SKPaint paint, float width)
    {
        var lines = new List<string>();
        string line = "";
        foreach (string word in text.Split(' '))
        {
            string candidate = line.Length == 0 ? word : $"{line} {word}";
            if (line.Length > 0 && paint.MeasureText(candidate) > width)
            {
                lines.Add(line);
                line = word;
            }
            else line = candidate;
        }
        lines.Add(line);
        return lines;
    }
}
