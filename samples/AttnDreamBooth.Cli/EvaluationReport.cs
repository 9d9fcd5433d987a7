using System.Globalization;
using AttnDreamBooth.Evaluation;
using AttnDreamBooth.IO;
using AttnDreamBooth.Imaging;
using SkiaSharp;

namespace AttnDreamBooth.Cli;

/// <summary>Writes an evaluation as <c>report.json</c> and <c>grid.png</c> (each atomically: temporary file + rename).</summary>
internal static class EvaluationReport
{
    public const string JsonFile = "report.json";
    public const string GridFile = "grid.png";

    /// <summary>What the evaluation was run on.</summary>
    public sealed record Inputs(string Model, string Concept, string Clip, string Images, int SourceImages);

    public sealed record ImageEntry(int Row, int Column, long Seed, double Identity, double Text);

    public sealed record PromptEntry(string Prompt, string TextPrompt, double Identity, double Text, IReadOnlyList<ImageEntry> Images);

    public sealed record ProtocolEntry(IReadOnlyList<string> Prompts, int ImagesPerPrompt, string Sampler, int Steps, double GuidanceScale, long Seed, string SeedSchedule);

    public sealed record Report(int FormatVersion, Inputs Inputs, string Token, string Category, ProtocolEntry Protocol, double Identity, double Text,
        int GeneratedImages, IReadOnlyList<PromptEntry> PerPrompt, string Grid);

    public static (string Json, string Grid) Write(ConceptEvaluation result, string folder, Inputs inputs)
    {
        Directory.CreateDirectory(folder);
        string grid = Path.Combine(folder, GridFile);
        string json = Path.Combine(folder, JsonFile);
        byte[] png = RenderGrid(result);
        AtomicFile.Write(grid, s => s.Write(png));
        AtomicFile.WriteAllText(json, JsonFiles.Serialize(ToReport(result, inputs)));
        return (json, grid);
    }

    public static Report ToReport(ConceptEvaluation result, Inputs inputs)
    {
        var p = result.Protocol;
        var perPrompt = result.PerPrompt.Select((s, row) => new PromptEntry(s.Prompt, s.TextPrompt, s.Identity, s.Text,
            result.Images[row].Select((image, column) => new ImageEntry(row, column, image.Seed, s.ImageIdentity[column], s.ImageText[column])).ToArray())).ToArray();
        return new Report(1, inputs, result.Token, result.Category,
            new ProtocolEntry(p.Prompts, p.ImagesPerPrompt, p.Sampler, p.InferenceSteps, p.GuidanceScale, p.Seed, "image i of every prompt uses seed + i"),
            result.Identity, result.Text, result.GeneratedCount, perPrompt, GridFile);
    }

    /// <summary>One row per prompt (its text above), one column per seed; under each image its identity (blue bar) and
    /// text (orange bar) score, also as text where a font is available.</summary>
    public static byte[] RenderGrid(ConceptEvaluation result)
    {
        const int margin = 8, header = 18, footer = 28, bar = 4;
        var images = result.Images;
        int imageSize = images.SelectMany(r => r).Max(g => Math.Max(g.Image.Width, g.Image.Height));
        int cell = Math.Max(imageSize, 200);
        int columns = images.Max(r => r.Count);
        int rowHeight = header + cell + footer;
        int width = margin + columns * (cell + margin);
        int height = margin + images.Count * (rowHeight + margin) + header;

        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException("SkiaSharp could not create a drawing surface.");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var textPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 12 };
        using var labelPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 11 };
        using var identityPaint = new SKPaint { Color = new SKColor(0x1f, 0x77, 0xb4) };
        using var textScorePaint = new SKPaint { Color = new SKColor(0xff, 0x7f, 0x0e) };
        using var trackPaint = new SKPaint { Color = new SKColor(0xe0, 0xe0, 0xe0) };
        var scores = result;
        for (int row = 0; row < images.Count; row++)
        {
            int top = margin + row * (rowHeight + margin);
            var promptScores = scores.PerPrompt[row];
            canvas.DrawText($"{promptScores.Prompt}   identity {F(promptScores.Identity)}  text {F(promptScores.Text)}", margin, top + header - 5, textPaint);
            for (int column = 0; column < images[row].Count; column++)
            {
                int left = margin + column * (cell + margin);
                using var image = images[row][column].Image.ToSkImage();
                canvas.DrawImage(image, new SKRect(left, top + header, left + cell, top + header + cell));
                int y = top + header + cell + 3;
                DrawBar(canvas, left, y, cell, bar, promptScores.ImageIdentity[column], trackPaint, identityPaint);
                DrawBar(canvas, left, y + bar + 1, cell, bar, promptScores.ImageText[column], trackPaint, textScorePaint);
                canvas.DrawText($"seed {images[row][column].Seed}  id {F3(promptScores.ImageIdentity[column])}  txt {F3(promptScores.ImageText[column])}", left, y + 2 * bar + 13, labelPaint);
            }
        }
        canvas.DrawText($"overall identity {F(scores.Identity)}  text {F(scores.Text)}  ({scores.GeneratedCount} images, {scores.SourceCount} photos)", margin, height - 6, textPaint);
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100) ?? throw new InvalidOperationException("SkiaSharp could not encode the grid as PNG.");
        return data.ToArray();
    }

    private static string F(double value) => value.ToString("F4", CultureInfo.InvariantCulture);

    private static string F3(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>A cosine in [-1, 1] as a bar filled from the left over [0, 1] (negative values leave it empty).</summary>
    private static void DrawBar(SKCanvas canvas, int left, int top, int width, int height, double value, SKPaint track, SKPaint fill)
    {
        canvas.DrawRect(new SKRect(left, top, left + width, top + height), track);
        float filled = (float)(Math.Clamp(value, 0, 1) * width);
        if (filled > 0) canvas.DrawRect(new SKRect(left, top, left + filled, top + height), fill);
    }

}
