using AttnDreamBooth.Imaging;
using SkiaSharp;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Paints a background. Scenes are drawn only with their palette's colours, so every background pixel is one palette
/// colour or an anti-aliased blend of two — the property the analyzer's background model relies on. All geometry is
/// in fractions of the image side, so a scene looks the same at any size.
/// </summary>
internal static class BackgroundPainter
{
    public static void Paint(SKCanvas canvas, BackgroundSpec background, long seed, int size)
    {
        var rng = new WorldRandom(seed);
        float s = size;
        switch (background.Kind)
        {
            case BackgroundKind.Plain:
                canvas.Clear(ToSk(background["base"]));
                break;
            case BackgroundKind.Snow:
                canvas.Clear(ToSk(background["sky"]));
                FillBelowWave(canvas, background["ground"], s, 0.62f, 0.035f, rng);
                using (var flake = Fill(background["flake"]))
                    for (int i = 0; i < 45; i++)
                        canvas.DrawCircle((float)rng.NextDouble(0, s), (float)rng.NextDouble(0, s), (float)rng.NextDouble(0.008, 0.02) * s, flake);
                break;
            case BackgroundKind.Night:
                canvas.Clear(ToSk(background["sky"]));
                using (var star = Fill(background["star"]))
                    for (int i = 0; i < 28; i++)
                        canvas.DrawCircle((float)rng.NextDouble(0, s), (float)rng.NextDouble(0, s), (float)rng.NextDouble(0.006, 0.016) * s, star);
                DrawMoon(canvas, background["moon"], background["sky"], s, rng);
                break;
            case BackgroundKind.Grass:
                canvas.Clear(ToSk(background["sky"]));
                float horizon = (float)rng.NextDouble(0.4, 0.48) * s;
                using (var grass = Fill(background["grass"]))
                    canvas.DrawRect(0, horizon, s, s - horizon, grass);
                using (var blade = new SKPaint { Color = ToSk(background["blade"]), IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 0.018f * s, StrokeCap = SKStrokeCap.Round })
                    for (int i = 0; i < 70; i++)
                    {
                        float x = (float)rng.NextDouble(0, s), y = (float)rng.NextDouble(horizon + 0.04 * s, s * 1.05);
                        float h = (float)rng.NextDouble(0.04, 0.09) * s, lean = (float)rng.NextDouble(-0.03, 0.03) * s;
                        canvas.DrawLine(x, y, x + lean, y - h, blade);
                    }
                break;
            case BackgroundKind.Beach:
                canvas.Clear(ToSk(background["sky"]));
                float seaTop = (float)rng.NextDouble(0.32, 0.4) * s;
                using (var sea = Fill(background["sea"]))
                    canvas.DrawRect(0, seaTop, s, s - seaTop, sea);
                FillBelowWave(canvas, background["sand"], s, (float)rng.NextDouble(0.55, 0.62), 0.03f, rng);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(background), $"Unknown background kind {background.Kind}.");
        }
    }

    public static SKColor ToSk(RgbColor c) => new(c.R, c.G, c.B, 255);

    private static SKPaint Fill(RgbColor c) => new() { Color = ToSk(c), IsAntialias = true, Style = SKPaintStyle.Fill };

    /// <summary>Fills everything below a gentle sine horizon at <paramref name="level"/> (fraction of the side).</summary>
    private static void FillBelowWave(SKCanvas canvas, RgbColor color, float s, float level, float amplitude, WorldRandom rng)
    {
        double phase = rng.NextDouble(0, 2 * Math.PI), cycles = rng.NextDouble(0.8, 1.6);
        using var path = new SKPath();
        path.MoveTo(0, s);
        const int steps = 48;
        for (int i = 0; i <= steps; i++)
        {
            float x = s * i / steps;
            float y = s * (level + amplitude * (float)Math.Sin(phase + 2 * Math.PI * cycles * i / steps));
            path.LineTo(x, y);
        }
        path.LineTo(s, s);
        path.Close();
        using var paint = Fill(color);
        canvas.DrawPath(path, paint);
    }

    /// <summary>A crescent in an upper corner: a moon disc with a sky-coloured disc cut out of it.</summary>
    private static void DrawMoon(SKCanvas canvas, RgbColor moon, RgbColor sky, float s, WorldRandom rng)
    {
        bool left = rng.NextBool(0.5);
        float r = 0.075f * s;
        float cx = (left ? 0.13f : 0.87f) * s, cy = 0.14f * s;
        using var moonPaint = Fill(moon);
        using var skyPaint = Fill(sky);
        canvas.DrawCircle(cx, cy, r, moonPaint);
        canvas.DrawCircle(cx + (left ? 0.45f : -0.45f) * r, cy - 0.2f * r, r * 0.85f, skyPaint);
    }
}
