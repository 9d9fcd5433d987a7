using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Measures a Shapes image back from its pixels, deterministically and without learning: the background is the
/// world background whose colour segments explain the image best; objects are the connected components of pixels
/// far from that background; each object's shape comes from template IoU, its colour from the nearest fill–ink
/// segment, its pattern from the layout of fill/ink labels, its size and position from its bounds.
/// Thread-safe after construction.
/// </summary>
public sealed partial class ShapesAnalyzer
{
    // Share of the image area below which a component is noise rather than an object (the smallest object covers ~3 %).
    private const double MinComponentShare = 0.008;

    // Smallest share of the image each major colour of a background covers (sky, sea band, ground: ≥ 10 % even behind a large object).
    private const double MajorRoleShare = 0.03;

    // A second component counts as an object only if it is at least this share of the largest one.
    private const double SecondObjectShare = 0.2;

    private readonly (BackgroundSpec Background, (RgbColor A, RgbColor B)[] Segments)[] _backgrounds;
    private readonly ShapeTemplates _templates;

    /// <summary>Creates an analyzer for <paramref name="world"/>.</summary>
    public ShapesAnalyzer(ShapesWorld world)
    {
        ArgumentNullException.ThrowIfNull(world);
        World = world;
        _backgrounds = [.. world.Backgrounds.Select(b => (b, b.Segments().ToArray()))];
        _templates = new ShapeTemplates(world.Shapes);
        BackgroundTolerance = world.MinimumContrast / 2;
    }

    /// <summary>The world whose vocabulary the analyzer reports in.</summary>
    public ShapesWorld World { get; }

    /// <summary>RGB distance from the background's colours within which a pixel counts as background (half the world's minimum contrast).</summary>
    public double BackgroundTolerance { get; }

    /// <summary>Measures background and objects of <paramref name="image"/>.</summary>
    /// <exception cref="ArgumentException">The image is smaller than 16 × 16.</exception>
    public SceneAnalysis Analyze(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width < 16 || image.Height < 16) throw new ArgumentException($"The analyzer needs at least 16x16 pixels; got {image.Width}x{image.Height}.", nameof(image));
        var (background, segments, error) = ClassifyBackground(image);
        var foreground = Foreground(image, segments);
        var objects = Components(foreground, image.Width, image.Height)
            .Select(c => Measure(image, Refine(image, c, segments, out double area), area, segments))
            .ToArray();
        return new SceneAnalysis(image.Width, image.Height, background, error, objects);
    }

    /// <summary>Pixels farther than <see cref="BackgroundTolerance"/> from every colour segment of the background.</summary>
    internal bool[] Foreground(RgbImage image, IReadOnlyList<(RgbColor A, RgbColor B)> segments)
    {
        var px = image.Pixels;
        var distance = new double[image.Width * image.Height];
        for (int i = 0; i < distance.Length; i++)
            distance[i] = ColorGeometry.DistanceToSegments(px[3 * i], px[3 * i + 1], px[3 * i + 2], segments);
        // On noisy images (generated ones) background pixels scatter around the model: raise the threshold to twice
        // the median distance (most pixels are background, so the median is the noise level; 0 on exact renders).
        var sorted = (double[])distance.Clone();
        Array.Sort(sorted);
        double threshold = Math.Max(BackgroundTolerance, 2 * sorted[sorted.Length / 2]);
        var fg = new bool[distance.Length];
        for (int i = 0; i < fg.Length; i++) fg[i] = distance[i] > threshold;
        return fg;
    }

    internal (BackgroundSpec Background, (RgbColor A, RgbColor B)[] Segments, double Error) ClassifyBackground(RgbImage image)
    {
        // Capped so that object pixels cost every candidate about the same and only the background decides.
        double cap = 3 * BackgroundTolerance;
        var px = image.Pixels;
        int n = image.Width * image.Height;
        var best = (_backgrounds[0].Background, _backgrounds[0].Segments, Error: double.MaxValue);
        foreach (var (background, segments) in _backgrounds)
        {
            double sum = 0;
            var major = BackgroundSpec.MajorRolesOf(background.Kind).Select(r => background[r]).ToArray();
            var support = new int[major.Length];
            for (int i = 0; i < n; i++)
            {
                double r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
                sum += Math.Min(cap, ColorGeometry.DistanceToSegments(r, g, b, segments));
                for (int k = 0; k < major.Length; k++)
                    if (ColorGeometry.DistanceToSegment(r, g, b, major[k], major[k]) <= BackgroundTolerance) support[k]++;
            }
            // A scene whose large regions are absent is not that scene, however well its colours fit (noise fits a
            // richer palette better): each missing major colour costs as much as a fully unexplained image.
            double error = sum / n + cap * support.Count(c => c < MajorRoleShare * n);
            if (error < best.Error) best = (background, segments, error);
        }
        return best;
    }

    /// <summary>4-connected components of the foreground, noise removed, at most two, largest first.</summary>
    internal List<List<int>> Components(bool[] fg, int width, int height)
    {
        var label = new int[fg.Length];
        var components = new List<List<int>>();
        var stack = new Stack<int>();
        for (int start = 0; start < fg.Length; start++)
        {
            if (!fg[start] || label[start] != 0) continue;
            var pixels = new List<int>();
            label[start] = components.Count + 1;
            stack.Push(start);
            while (stack.Count > 0)
            {
                int p = stack.Pop();
                pixels.Add(p);
                int x = p % width, y = p / width;
                void Visit(int q)
                {
                    if (fg[q] && label[q] == 0)
                    {
                        label[q] = components.Count + 1;
                        stack.Push(q);
                    }
                }
                if (x > 0) Visit(p - 1);
                if (x + 1 < width) Visit(p + 1);
                if (y > 0) Visit(p - width);
                if (y + 1 < height) Visit(p + width);
            }
            components.Add(pixels);
        }
        int minArea = Math.Max(4, (int)(MinComponentShare * width * height));
        var kept = components.Where(c => c.Count >= minArea).OrderByDescending(c => c.Count).ThenBy(c => c.Min()).Take(2).ToList();
        if (kept.Count == 2 && kept[1].Count < SecondObjectShare * kept[0].Count) kept.RemoveAt(1);
        return kept;
    }

    /// <summary>
    /// Decides the rim: a pixel farther than the tolerance from the background may still be mostly background (a
    /// strongly contrasting object shows at low coverage). Its coverage is its position between the nearest
    /// background colour and the object's own colour next to it (the mean of nearby non-rim pixels); the mask keeps
    /// rim pixels at least half covered, and <paramref name="area"/> sums the coverages.
    /// </summary>
    private static List<int> Refine(RgbImage image, List<int> pixels, IReadOnlyList<(RgbColor A, RgbColor B)> segments, out double area)
    {
        var kept = PeelRim(image, pixels, segments, out area, out _);
        return kept.Count > 0 ? kept : pixels;
    }

    // Passes of rim peeling after the first for the silhouette the shape is read from: a blurred object's
    // low-coverage band is up to ~3 pixels wide (VAE decodes), and a concave corner filled by it is not a rim pixel
    // until the layer outside it is gone.
    private const int SilhouettePasses = 3;

    /// <summary>
    /// The silhouette the shape is read from: <paramref name="mask"/> (already peeled once by <see cref="Refine"/>)
    /// peeled again while a pass drops pixels. On sharp renders the rim is one pixel wide and nothing more goes; on
    /// blurry images the band of partial coverage left inside the first rim (filled concave corners, a ring's
    /// blurred hole edge) goes too. <paramref name="area"/> is the coverage mass kept.
    /// </summary>
    private static List<int> Silhouette(RgbImage image, List<int> mask, IReadOnlyList<(RgbColor A, RgbColor B)> segments, out double area)
    {
        var current = mask;
        area = -1;
        for (int pass = 0; pass < SilhouettePasses; pass++)
        {
            var next = PeelRim(image, current, segments, out double passArea, out int dropped);
            if (next.Count == 0) break;
            (current, area) = (next, passArea);
            if (dropped == 0) break;
        }
        if (area < 0) area = current.Count;
        return current;
    }

    /// <summary>One pass of <see cref="Refine"/>: the component's rim pixels kept when at least half covered.</summary>
    private static List<int> PeelRim(RgbImage image, List<int> pixels, IReadOnlyList<(RgbColor A, RgbColor B)> segments, out double area, out int dropped)
    {
        int w = image.Width, h = image.Height;
        var px = image.Pixels;
        var inComponent = new bool[w * h];
        foreach (int p in pixels) inComponent[p] = true;
        bool IsRim(int p)
        {
            int x = p % w, y = p / w;
            return x == 0 || y == 0 || x == w - 1 || y == h - 1
                || !inComponent[p - 1] || !inComponent[p + 1] || !inComponent[p - w] || !inComponent[p + w];
        }
        var kept = new List<int>(pixels.Count);
        area = 0;
        foreach (int p in pixels)
        {
            if (!IsRim(p)) { kept.Add(p); area += 1; continue; }
            int x = p % w, y = p / w;
            // A rim pixel is a blend of the local background (nearby pixels outside the component, snapped onto the
            // background's colours to shed their own faint coverage) and one nearby inner pixel's colour (fill or ink):
            // take the inner neighbour whose blend line passes closest to it.
            double br = 0, bg = 0, bb = 0;
            int m = 0;
            for (int dy = -2; dy <= 2; dy++)
                for (int dx = -2; dx <= 2; dx++)
                {
                    int qx = x + dx, qy = y + dy;
                    if ((uint)qx >= (uint)w || (uint)qy >= (uint)h) continue;
                    int q = qy * w + qx;
                    if (inComponent[q]) continue;
                    var (r0, g0, b0) = ColorGeometry.NearestPoint(px[3 * q], px[3 * q + 1], px[3 * q + 2], segments);
                    br += r0; bg += g0; bb += b0;
                    m++;
                }
            (br, bg, bb) = m > 0 ? (br / m, bg / m, bb / m) : ColorGeometry.NearestPoint(px[3 * p], px[3 * p + 1], px[3 * p + 2], segments);
            var background = new RgbColor((byte)Math.Round(br), (byte)Math.Round(bg), (byte)Math.Round(bb));
            double alpha = 1, bestResidual = double.MaxValue;
            for (int dy = -2; dy <= 2; dy++)
                for (int dx = -2; dx <= 2; dx++)
                {
                    int qx = x + dx, qy = y + dy;
                    if ((uint)qx >= (uint)w || (uint)qy >= (uint)h) continue;
                    int q = qy * w + qx;
                    if (!inComponent[q] || IsRim(q)) continue;
                    var inner = new RgbColor(px[3 * q], px[3 * q + 1], px[3 * q + 2]);
                    if (ColorGeometry.Distance(inner, background) < 1) continue;
                    double residual = ColorGeometry.DistanceToSegment(px[3 * p], px[3 * p + 1], px[3 * p + 2], background, inner, out double t);
                    if (residual < bestResidual) (bestResidual, alpha) = (residual, t);
                }
            area += alpha;
            if (alpha >= 0.5) kept.Add(p);
        }
        dropped = pixels.Count - kept.Count;
        return kept;
    }

    private ObjectAnalysis Measure(RgbImage image, List<int> pixels, double area, IReadOnlyList<(RgbColor A, RgbColor B)> segments)
    {
        int w = image.Width, h = image.Height;
        var mask = new bool[w * h];
        int minX = w, minY = h, maxX = -1, maxY = -1;
        double sx = 0, sy = 0;
        foreach (int p in pixels)
        {
            mask[p] = true;
            int x = p % w, y = p / w;
            minX = Math.Min(minX, x); maxX = Math.Max(maxX, x);
            minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
            sx += x + 0.5;
            sy += y + 0.5;
        }
        var bounds = new PixelBounds(minX, minY, maxX - minX + 1, maxY - minY + 1);
        var ranked = RankShapes(image, pixels, segments);
        var inner = Erode(mask, w, h);
        var (color, colorError) = ClassifyColor(image, inner);
        var texture = TextureReader.Measure(BlendParameters(image, inner, color.Fill, color.Ink), w, h);
        var kind = TextureReader.Classify(texture);
        var pattern = World.Patterns.FirstOrDefault(p => p.Kind == kind) ?? World.Patterns[0];
        double side = bounds.LongerSide / (double)Math.Max(w, h);
        var size = World.Sizes.MinBy(s => Math.Abs(Math.Log(s.Side / side)))!;
        double cx = bounds.CenterX / w, cy = bounds.CenterY / h;
        var position = World.Positions.MinBy(p => (p.X - cx) * (p.X - cx) + (p.Y - cy) * (p.Y - cy))!;
        var coverage = new byte[w * h];
        for (int i = 0; i < mask.Length; i++) if (mask[i]) coverage[i] = 255;
        return new ObjectAnalysis(new ObjectMask(w, h, coverage), area, sx / pixels.Count, sy / pixels.Count, bounds,
            ranked[0].Shape, ranked[0].IoU, color, colorError, pattern, texture, size, position) { ShapeRanking = ranked };
    }

    /// <summary>The shapes ranked for the object <paramref name="pixels"/>: its silhouette fitted by each template at the silhouette's coverage mass and centroid.</summary>
    private (ShapeSpec Shape, double IoU)[] RankShapes(RgbImage image, List<int> pixels, IReadOnlyList<(RgbColor A, RgbColor B)> segments)
    {
        int w = image.Width, h = image.Height;
        var silhouette = Silhouette(image, pixels, segments, out double mass);
        var mask = new bool[w * h];
        double sx = 0, sy = 0;
        foreach (int p in silhouette)
        {
            mask[p] = true;
            sx += p % w + 0.5;
            sy += p / w + 0.5;
        }
        return _templates.Rank(mask, w, h, mass, sx / silhouette.Count, sy / silhouette.Count);
    }

    /// <summary>The world colour whose fill–ink segment the inner pixels lie closest to on average.</summary>
    private (ColorSpec Color, double Error) ClassifyColor(RgbImage image, bool[] inner)
    {
        var px = image.Pixels;
        ColorSpec best = World.Colors[0];
        double bestError = double.MaxValue;
        foreach (var c in World.Colors)
        {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < inner.Length; i++)
            {
                if (!inner[i]) continue;
                sum += ColorGeometry.DistanceToSegment(px[3 * i], px[3 * i + 1], px[3 * i + 2], c.Fill, c.Ink);
                n++;
            }
            double error = n == 0 ? double.MaxValue : sum / n;
            if (error < bestError) (best, bestError) = (c, error);
        }
        return (best, bestError);
    }

    /// <summary>For inner pixels the blend parameter t along fill→ink (0 fill, 1 ink); −1 elsewhere.</summary>
    internal static double[] BlendParameters(RgbImage image, bool[] inner, RgbColor fill, RgbColor ink)
    {
        var px = image.Pixels;
        var t = new double[inner.Length];
        for (int i = 0; i < inner.Length; i++)
        {
            if (!inner[i]) { t[i] = -1; continue; }
            ColorGeometry.DistanceToSegment(px[3 * i], px[3 * i + 1], px[3 * i + 2], fill, ink, out double ti);
            t[i] = ti;
        }
        return t;
    }

    /// <summary>Mask pixels whose four neighbours are in the mask too (drops the anti-aliased rim); the mask itself if that leaves too little.</summary>
    internal static bool[] Erode(bool[] mask, int w, int h, int times = 1)
    {
        var current = mask;
        for (int k = 0; k < times; k++)
        {
            var next = new bool[mask.Length];
            int count = 0;
            for (int y = 1; y < h - 1; y++)
                for (int x = 1; x < w - 1; x++)
                {
                    int i = y * w + x;
                    if (current[i] && current[i - 1] && current[i + 1] && current[i - w] && current[i + w]) { next[i] = true; count++; }
                }
            if (count < 8) return current;
            current = next;
        }
        return current;
    }
}
