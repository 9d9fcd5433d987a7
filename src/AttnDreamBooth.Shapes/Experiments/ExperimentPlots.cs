using System.Globalization;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using SkiaSharp;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>The experiment's figures, drawn with SkiaSharp: identity against text per method, and a method × prompt grid
/// of images over their [V] maps per concept.</summary>
internal static class ExperimentPlots
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // The matplotlib "tab10" colours: distinct and readable for up to ten methods.
    private static readonly SKColor[] Palette =
    [
        new(0x1f, 0x77, 0xb4), new(0xff, 0x7f, 0x0e), new(0x2c, 0xa0, 0x2c), new(0xd6, 0x27, 0x28), new(0x94, 0x67, 0xbd),
        new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x7f, 0x7f, 0x7f), new(0xbc, 0xbd, 0x22), new(0x17, 0xbe, 0xcf),
    ];

    public static SKColor ColorOf(int index) => Palette[index % Palette.Length];

    /// <summary>
    /// Identity (x) against text (y): per method the mean over the non-tuning concepts' images with its 95 % intervals as
    /// error bars, each concept's mean as a small ring, and for multi-stage methods a dashed path through the stage ends.
    /// </summary>
    public static byte[] Scatter(IReadOnlyList<ExperimentImageScore> scores, IReadOnlyList<ExperimentMethodSummary> summary,
        IReadOnlyList<PersonalizationMethod> methods)
    {
        const int width = 900, height = 640, left = 80, right = 230, top = 50, bottom = 70;
        var concepts = scores.Where(s => !s.IsTuning && s.AfterStage is null)
            .GroupBy(s => (s.Method, s.Concept))
            .Select(g => (g.Key.Method, X: g.Average(s => s.Identity.Score), Y: g.Average(s => s.Text)))
            .ToList();
        var xs = summary.SelectMany(s => new[] { s.Identity.Mean - Half(s.Identity), s.Identity.Mean + Half(s.Identity) }).Concat(concepts.Select(c => c.X));
        var ys = summary.SelectMany(s => new[] { s.Text.Mean - Half(s.Text), s.Text.Mean + Half(s.Text) }).Concat(concepts.Select(c => c.Y));
        var (x0, x1) = Range(xs);
        var (y0, y1) = Range(ys);
        float plotW = width - left - right, plotH = height - top - bottom;
        float X(double v) => left + (float)((v - x0) / (x1 - x0)) * plotW;
        float Y(double v) => top + plotH - (float)((v - y0) / (y1 - y0)) * plotH;

        using var surface = SkiaFigure.Create(width, height);
        var canvas = surface.Canvas;
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 13 };
        using var small = new SKPaint { Color = new SKColor(0x40, 0x40, 0x40), IsAntialias = true, TextSize = 11 };
        using var grid = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1, PathEffect = SKPathEffect.CreateDash([2, 3], 0) };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.2f, Style = SKPaintStyle.Stroke };

        for (double t = Math.Ceiling(x0 * 10 - 1e-9) / 10; t <= x1 + 1e-9; t += 0.1)
        {
            canvas.DrawLine(X(t), top, X(t), top + plotH, grid);
            canvas.DrawText(Tick(t), X(t) - 9, top + plotH + 18, small);
        }
        for (double t = Math.Ceiling(y0 * 10 - 1e-9) / 10; t <= y1 + 1e-9; t += 0.1)
        {
            canvas.DrawLine(left, Y(t), left + plotW, Y(t), grid);
            canvas.DrawText(Tick(t), left - 30, Y(t) + 4, small);
        }
        canvas.DrawRect(new SKRect(left, top, left + plotW, top + plotH), axis);
        canvas.DrawText("Identity vs. text: mean ± 95 % CI per method; rings: per-concept means; dashed: stage ends", left, top - 20, text);
        canvas.DrawText("identity (analyzer: the concept's shape, palette, pattern, outline, emblem)", left + 40, height - 22, text);
        canvas.Save();
        canvas.RotateDegrees(-90, 20, top + plotH / 2);
        canvas.DrawText("text (share of requested attributes present)", 20 - 140, top + plotH / 2 + 4, text);
        canvas.Restore();

        for (int m = 0; m < methods.Count; m++)
        {
            float ly = top + 10 + m * 22;
            using (var legend = new SKPaint { Color = ColorOf(m), IsAntialias = true })
                canvas.DrawCircle(left + plotW + 24, ly - 4, 5.5f, legend);
            canvas.DrawText(methods[m].Name(), left + plotW + 36, ly, text);
        }
        canvas.ClipRect(new SKRect(left, top, left + plotW, top + plotH));
        for (int m = 0; m < methods.Count; m++)
        {
            var color = ColorOf(m);
            using var stroke = new SKPaint { Color = color, StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
            using var faint = new SKPaint { Color = color.WithAlpha(150), StrokeWidth = 1.2f, IsAntialias = true, Style = SKPaintStyle.Stroke };
            using var fill = new SKPaint { Color = color, IsAntialias = true };
            using var dashed = new SKPaint { Color = color, StrokeWidth = 1.2f, IsAntialias = true, Style = SKPaintStyle.Stroke, PathEffect = SKPathEffect.CreateDash([5, 4], 0) };
            foreach (var c in concepts.Where(c => c.Method == methods[m])) canvas.DrawCircle(X(c.X), Y(c.Y), 3.5f, faint);
            var stages = summary.Where(s => s.Method == methods[m]).ToList();
            if (stages.Count > 1)
            {
                for (int i = 1; i < stages.Count; i++)
                    canvas.DrawLine(X(stages[i - 1].Identity.Mean), Y(stages[i - 1].Text.Mean), X(stages[i].Identity.Mean), Y(stages[i].Text.Mean), dashed);
                foreach (var s in stages.Where(s => s.AfterStage is not null))
                {
                    float sx = X(s.Identity.Mean), sy = Y(s.Text.Mean);
                    canvas.DrawRect(new SKRect(sx - 3, sy - 3, sx + 3, sy + 3), stroke);
                    canvas.DrawText($"s{(int)s.AfterStage!.Value}", sx + 5, sy - 5, small);
                }
            }
            if (stages.FirstOrDefault(s => s.AfterStage is null) is { Identity.Count: > 0 } final)
            {
                float fx = X(final.Identity.Mean), fy = Y(final.Text.Mean);
                float hx = (float)(Half(final.Identity) / (x1 - x0) * plotW), hy = (float)(Half(final.Text) / (y1 - y0) * plotH);
                canvas.DrawLine(fx - hx, fy, fx + hx, fy, stroke);
                canvas.DrawLine(fx, fy - hy, fx, fy + hy, stroke);
                canvas.DrawCircle(fx, fy, 5.5f, fill);
            }
        }
        return SkiaFigure.EncodePng(surface);
    }

    /// <summary>
    /// One concept's grid: a row per method (and per stage end of multi-stage methods), a column per prompt, each cell the
    /// first seed's image above its [V]-map overlay with the image's identity and text score; the prompts listed below.
    /// </summary>
    public static byte[] Grid(string root, string concept, IReadOnlyList<ExperimentImageScore> rows, IReadOnlyList<PersonalizationMethod> methods,
        IReadOnlyList<ConceptPrompt> prompts)
    {
        const int label = 190, header = 44, gap = 6, caption = 16, line = 15;
        long seed = rows.Min(r => r.Seed);
        var shown = rows.Where(r => r.Seed == seed).ToList();
        var columns = shown.Select(r => r.PromptIndex).Distinct().Order().ToArray();
        var lines = methods.SelectMany(m => shown.Where(r => r.Method == m).Select(r => r.AfterStage).Distinct()
            .OrderBy(s => s ?? (TrainingStage)int.MaxValue).Select(s => (Method: m, Stage: s))).ToArray();
        int tile = 128;
        int cellW = tile + gap, cellH = 2 * tile + caption + gap;
        int width = label + columns.Length * cellW + gap;
        int footer = (columns.Length + 1) * line + gap;
        int height = header + lines.Length * cellH + footer;
        if ((long)width * height > 200L << 20) throw new InvalidOperationException($"A {width}×{height} grid is too large; use fewer prompts or methods.");

        using var surface = SkiaFigure.Create(width, height);
        var canvas = surface.Canvas;
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 13 };
        using var small = new SKPaint { Color = new SKColor(0x30, 0x30, 0x30), IsAntialias = true, TextSize = 11 };
        canvas.DrawText($"{concept}: seed {seed}, image above its [V] map", gap, 18, text);
        for (int c = 0; c < columns.Length; c++) canvas.DrawText($"{columns[c] + 1}", label + c * cellW + tile / 2 - 6, header - 6, text);
        for (int l = 0; l < lines.Length; l++)
        {
            var (method, stage) = lines[l];
            int y = header + l * cellH;
            using var colour = new SKPaint { Color = ColorOf(methods.ToList().IndexOf(method)), IsAntialias = true, TextSize = 14, FakeBoldText = true };
            canvas.DrawText(method.Name(), gap, y + tile - 8, colour);
            canvas.DrawText(ExperimentReport.StageLabel(stage), gap, y + tile + 10, small);
            for (int c = 0; c < columns.Length; c++)
            {
                var row = shown.FirstOrDefault(r => r.Method == method && r.AfterStage == stage && r.PromptIndex == columns[c]);
                if (row is null) continue;
                int x = label + c * cellW;
                SkiaFigure.DrawImage(canvas, RgbImage.Load(Path.Combine(root, row.Image)), new SKRect(x, y, x + tile, y + tile));
                SkiaFigure.DrawImage(canvas, RgbImage.Load(Path.Combine(root, row.Heatmap)), new SKRect(x, y + tile, x + tile, y + 2 * tile));
                canvas.DrawText($"id {row.Identity.Score.ToString("F2", Inv)} tx {row.Text.ToString("F2", Inv)}", x + 2, y + 2 * tile + 12, small);
            }
        }
        int fy = header + lines.Length * cellH + line;
        foreach (int p in columns)
        {
            canvas.DrawText($"{p + 1}: {ConceptPrompts.Text(prompts[p])}", gap, fy, small);
            fy += line;
        }
        return SkiaFigure.EncodePng(surface);
    }

    private static string Tick(double value) => (Math.Round(value, 1) + 0.0).ToString("F1", Inv);

    private static double Half(ExperimentEstimate e) => double.IsNaN(e.HalfWidth) ? 0 : e.HalfWidth;

    /// <summary>A range on the 0.1 grid around the finite values, inside [0, 1] and at least 0.3 wide (points outside are clipped).</summary>
    private static (double Low, double High) Range(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToArray();
        if (v.Length == 0) return (0, 1);
        double lo = Math.Clamp(Math.Floor(v.Min() * 10 + 1e-9) / 10, 0, 1), hi = Math.Clamp(Math.Ceiling(v.Max() * 10 - 1e-9) / 10, 0, 1);
        while (hi - lo < 0.3 - 1e-9)
        {
            if (hi < 1) hi = Math.Min(1, hi + 0.1);
            else lo = Math.Max(0, lo - 0.1);
        }
        return (lo, hi);
    }
}
