using SkiaSharp;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Ranks the world's shapes for an observed silhouette by fitting each shape's template to it. A generated (or
/// VAE-decoded) image is blurred: corners round off and tips fall below half coverage, so the silhouette's bounds
/// are not the shape's. Blur moves an object's coverage mass and centroid little, so each template is placed at the
/// silhouette's coverage area and centroid, its exact pixel coverage is blurred by each of a few widths and cut at half
/// coverage, as the analyzer's mask is, and compared with the mask by IoU. Shapes are never rotated in the world.
/// </summary>
internal sealed class ShapeTemplates
{
    // Resolution of the stored templates: fine enough that the pixel coverage of a 6-pixel object is exact to ~1 %.
    private const int Resolution = 256;
    private const double Side = 224;

    // Gaussian widths (pixels) tried for the image's blur: a sharp render, and the range VAE decodes show.
    private static readonly double[] BlurSigmas = [0, 0.7, 1.2];

    private readonly Template[] _templates;

    public ShapeTemplates(IReadOnlyList<ShapeSpec> shapes)
    {
        _templates = [.. shapes.Select(s => new Template(s))];
    }

    /// <summary>
    /// The shapes by decreasing IoU of their fitted template with <paramref name="mask"/>, the template placed with
    /// coverage area <paramref name="area"/> (pixels) and centroid (<paramref name="centerX"/>, <paramref name="centerY"/>).
    /// </summary>
    public (ShapeSpec Shape, double IoU)[] Rank(bool[] mask, int width, int height, double area, double centerX, double centerY)
    {
        int maskCount = 0;
        for (int i = 0; i < mask.Length; i++) if (mask[i]) maskCount++;
        if (maskCount == 0 || area <= 0) return [.. _templates.Select(t => (t.Shape, 0.0))];
        return [.. _templates
            .Select(t => (t.Shape, IoU: t.FitIoU(mask, width, height, maskCount, area, centerX, centerY)))
            .OrderByDescending(r => r.IoU)];
    }

    private sealed class Template
    {
        // Integral image of the coverage: _integral[v * (Resolution + 1) + u] = coverage summed over [0, u) × [0, v).
        private readonly double[] _integral = new double[(Resolution + 1) * (Resolution + 1)];
        private readonly double _area, _centerX, _centerY;
        private readonly double _minX, _minY, _maxX, _maxY;

        public Template(ShapeSpec shape)
        {
            Shape = shape;
            using var bitmap = new SKBitmap(new SKImageInfo(Resolution, Resolution, SKColorType.Alpha8, SKAlphaType.Premul));
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.Transparent);
                using var path = ShapesRenderer.ObjectPath(shape, 0.5, 0.5, Side / Resolution, Resolution);
                using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
                canvas.DrawPath(path, paint);
            }
            var span = bitmap.GetPixelSpan();
            double sx = 0, sy = 0;
            (_minX, _minY, _maxX, _maxY) = (Resolution, Resolution, 0, 0);
            int stride = Resolution + 1;
            for (int y = 0; y < Resolution; y++)
            {
                double row = 0;
                for (int x = 0; x < Resolution; x++)
                {
                    double c = span[y * bitmap.RowBytes + x] / 255.0;
                    row += c;
                    _integral[(y + 1) * stride + x + 1] = _integral[y * stride + x + 1] + row;
                    if (c <= 0) continue;
                    _area += c;
                    sx += c * (x + 0.5);
                    sy += c * (y + 0.5);
                    _minX = Math.Min(_minX, x); _maxX = Math.Max(_maxX, x + 1);
                    _minY = Math.Min(_minY, y); _maxY = Math.Max(_maxY, y + 1);
                }
            }
            (_centerX, _centerY) = (sx / _area, sy / _area);
        }

        public ShapeSpec Shape { get; }

        /// <summary>The best IoU with <paramref name="mask"/> over <see cref="BlurSigmas"/> of this template placed at the object's mass and centroid.</summary>
        public double FitIoU(bool[] mask, int width, int height, int maskCount, double area, double centerX, double centerY)
        {
            // Template units per image pixel, so that the template's coverage area equals the object's.
            double f = Math.Sqrt(_area / area);
            int margin = (int)Math.Ceiling(3 * BlurSigmas.Max()) + 1;
            int x0 = (int)Math.Floor(centerX + (_minX - _centerX) / f) - margin;
            int y0 = (int)Math.Floor(centerY + (_minY - _centerY) / f) - margin;
            int x1 = (int)Math.Ceiling(centerX + (_maxX - _centerX) / f) + margin;
            int y1 = (int)Math.Ceiling(centerY + (_maxY - _centerY) / f) + margin;
            int pw = x1 - x0, ph = y1 - y0;
            var coverage = new double[pw * ph];
            for (int v = 0; v < ph; v++)
            {
                double ta = _centerY + (y0 + v - centerY) * f, tb = ta + f;
                for (int u = 0; u < pw; u++)
                {
                    double sa = _centerX + (x0 + u - centerX) * f, sb = sa + f;
                    coverage[v * pw + u] = (Integral(sb, tb) - Integral(sa, tb) - Integral(sb, ta) + Integral(sa, ta)) / (f * f);
                }
            }

            double best = 0;
            foreach (double sigma in BlurSigmas)
            {
                var blurred = sigma > 0 ? Blur(coverage, pw, ph, sigma) : coverage;
                int inter = 0, templateCount = 0;
                for (int v = 0; v < ph; v++)
                {
                    int y = y0 + v;
                    if ((uint)y >= (uint)height) continue;
                    for (int u = 0; u < pw; u++)
                    {
                        int x = x0 + u;
                        if ((uint)x >= (uint)width || blurred[v * pw + u] < 0.5) continue;
                        templateCount++;
                        if (mask[y * width + x]) inter++;
                    }
                }
                int union = maskCount + templateCount - inter;
                if (union > 0) best = Math.Max(best, inter / (double)union);
            }
            return best;
        }

        // The integral image between grid points: bilinear interpolation is exact for coverage constant per cell.
        private double Integral(double u, double v)
        {
            u = Math.Clamp(u, 0, Resolution);
            v = Math.Clamp(v, 0, Resolution);
            int iu = Math.Min((int)u, Resolution - 1), iv = Math.Min((int)v, Resolution - 1);
            double fu = u - iu, fv = v - iv;
            int stride = Resolution + 1, p = iv * stride + iu;
            double top = _integral[p] + fu * (_integral[p + 1] - _integral[p]);
            double bottom = _integral[p + stride] + fu * (_integral[p + stride + 1] - _integral[p + stride]);
            return top + fv * (bottom - top);
        }

        private static double[] Blur(double[] image, int w, int h, double sigma)
        {
            int r = (int)Math.Ceiling(3 * sigma);
            var kernel = new double[2 * r + 1];
            double sum = 0;
            for (int k = -r; k <= r; k++) sum += kernel[k + r] = Math.Exp(-k * k / (2 * sigma * sigma));
            for (int k = 0; k < kernel.Length; k++) kernel[k] /= sum;
            return Convolve(Convolve(image, w, h, kernel, 1, 0), w, h, kernel, 0, 1);
        }

        // One pass of the separable Gaussian along (dx, dy); outside the patch counts as zero coverage.
        private static double[] Convolve(double[] image, int w, int h, double[] kernel, int dx, int dy)
        {
            int r = kernel.Length / 2;
            var result = new double[image.Length];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    double acc = 0;
                    for (int k = -r; k <= r; k++)
                    {
                        int xx = x + k * dx, yy = y + k * dy;
                        if ((uint)xx < (uint)w && (uint)yy < (uint)h) acc += kernel[k + r] * image[yy * w + xx];
                    }
                    result[y * w + x] = acc;
                }
            return result;
        }
    }
}
