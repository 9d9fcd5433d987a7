using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

public sealed partial class ShapesAnalyzer
{
    /// <summary>The identity of the image's object that looks most like <paramref name="concept"/> (<see cref="ConceptIdentity.None"/> if there is no object).</summary>
    public ConceptIdentity Identify(RgbImage image, ConceptSpec concept)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(concept);
        var analysis = Analyze(image);
        return analysis.Objects.Select(o => Identify(image, o, concept)).MaxBy(i => i.Score) ?? ConceptIdentity.None;
    }

    /// <summary>How much the measured object <paramref name="obj"/> of <paramref name="image"/> looks like <paramref name="concept"/>.</summary>
    public ConceptIdentity Identify(RgbImage image, ObjectAnalysis obj, ConceptSpec concept)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(obj);
        ArgumentNullException.ThrowIfNull(concept);
        int w = image.Width, h = image.Height;
        var look = concept.Appearance;
        var px = image.Pixels;
        var mask = new bool[w * h];
        for (int i = 0; i < mask.Length; i++) mask[i] = obj.Mask.Coverage[i] >= 128;

        var ranked = obj.ShapeRanking
            ?? RankShapes(image, [.. Enumerable.Range(0, mask.Length).Where(i => mask[i])], ClassifyBackground(image).Segments);
        double shape = ranked[0].Shape == concept.Category ? 1 : ranked.First(r => r.Shape == concept.Category).IoU / ranked[0].IoU;

        // The mask's side includes the outer half of the outline stroke.
        double side = obj.Bounds.LongerSide / (1 + look.OutlineWidth);
        int outlinePx = (int)Math.Ceiling(look.OutlineWidth * side);
        var core = Erode(mask, w, h, Math.Max(1, outlinePx));
        double tolerance = 1.5 * BackgroundTolerance;

        // Palette: pattern colours, emblem and the blends between them (the core lies inside the outline).
        var colors = new List<(RgbColor, RgbColor)> { (look.Primary, look.Secondary) };
        if (look.Emblem is not null) colors.AddRange([(look.Primary, look.EmblemColor), (look.Secondary, look.EmblemColor)]);
        // A blurred stroke bleeds into the core's outer pixels, so blends with the outline colour are the concept's too,
        // as long as they are mostly pattern (an object in the outline colour alone is not the concept's palette).
        RgbColor[] patternColors = [look.Primary, look.Secondary];
        int coreCount = 0, explained = 0, onPattern = 0, secondary = 0;
        var t = new double[mask.Length];
        for (int i = 0; i < mask.Length; i++)
        {
            t[i] = -1;
            if (!core[i]) continue;
            coreCount++;
            double r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
            if (ColorGeometry.DistanceToSegments(r, g, b, colors) <= tolerance
                || (look.OutlineWidth > 0 && LeansTowards(r, g, b, look.Outline, patternColors, tolerance, towardsOthers: true))) explained++;
            // Pattern pixels: on the primary–secondary blend and not nearer the outline colour.
            var c = new RgbColor((byte)r, (byte)g, (byte)b);
            bool outlineLike = look.OutlineWidth > 0 && ColorGeometry.Distance(c, look.Outline) < Math.Min(ColorGeometry.Distance(c, look.Primary), ColorGeometry.Distance(c, look.Secondary));
            if (!outlineLike && ColorGeometry.DistanceToSegment(r, g, b, look.Primary, look.Secondary, out double ti) <= tolerance)
            {
                t[i] = ti;
                onPattern++;
                if (ti > 0.5) secondary++;
            }
        }
        double palette = coreCount == 0 ? 0 : explained / (double)coreCount;
        double expected = look.Pattern.Kind switch
        {
            PatternKind.Solid => 0,
            PatternKind.Dots => Math.PI * 0.3 * 0.3,
            _ => 0.5,
        };
        double share = onPattern == 0 ? 0 : secondary / (double)onPattern;
        // Presence of each colour relative to what the pattern puts there (1 when at least as much as expected).
        double balance = onPattern == 0 ? 0 : expected == 0 ? 1 - share : Math.Min(1, Math.Min(share / expected, (1 - share) / (1 - expected)));
        var texture = TextureReader.Measure(t, w, h);
        // Full credit for the concept's pattern, half for another two-colour pattern in its colours (small or
        // partly hidden cores can read as a neighbouring kind), none for a single colour.
        var kind = TextureReader.Classify(texture);
        double pattern = onPattern == 0 ? 0 : kind == look.Pattern.Kind ? 1 : kind != PatternKind.Solid && look.Pattern.Kind != PatternKind.Solid ? 0.5 : 0;

        double? outline = null;
        if (look.OutlineWidth > 0)
        {
            // Blur spreads the stroke into what it borders (the pattern inside, the background outside), so a stroke pixel
            // is any blend of the outline colour with those that is nearer the outline's end, and a rim pixel counts when
            // such a pixel lies within the stroke's width plus one pixel of it. A pixel no nearer the outline colour than
            // the background is the background's: on a background close to the outline colour, any object's blurred rim
            // would otherwise read as a stroke.
            var backgroundSegments = ClassifyBackground(image).Segments;
            var borders = new List<RgbColor>(patternColors);
            foreach (var (a, b) in backgroundSegments) borders.AddRange([a, b]);
            var stroke = new bool[mask.Length];
            for (int i = 0; i < mask.Length; i++)
            {
                if (!mask[i]) continue;
                var c = new RgbColor(px[3 * i], px[3 * i + 1], px[3 * i + 2]);
                stroke[i] = LeansTowards(c.R, c.G, c.B, look.Outline, borders, tolerance)
                    && ColorGeometry.Distance(c, look.Outline) < ColorGeometry.DistanceToSegments(c.R, c.G, c.B, backgroundSegments);
            }
            var near = Dilate(stroke, w, h, outlinePx + 1);
            var inner = Erode(mask, w, h, 1);
            int rim = 0, hits = 0;
            for (int i = 0; i < mask.Length; i++)
            {
                if (!mask[i] || inner[i]) continue;
                rim++;
                if (near[i]) hits++;
            }
            outline = rim == 0 ? 0 : hits / (double)rim;
        }

        double? emblem = null;
        if (look.Emblem is { } emblemShape)
        {
            var emblemMask = ShapesRenderer.Mask(new SceneObject(emblemShape, World.Colors[0], World.Patterns[0], World.Sizes[0], World.Positions[0],
                obj.Bounds.CenterX / w, obj.Bounds.CenterY / h, side * look.EmblemSize / Math.Max(w, h)), w, h);
            var area = new bool[mask.Length];
            for (int i = 0; i < area.Length; i++) area[i] = emblemMask[i] >= 128;
            area = Erode(area, w, h, 1);
            int n = 0, hits = 0;
            for (int i = 0; i < area.Length; i++)
            {
                if (!area[i]) continue;
                n++;
                // Blurred, the emblem blends with the pattern around it.
                if (LeansTowards(px[3 * i], px[3 * i + 1], px[3 * i + 2], look.EmblemColor, patternColors, tolerance)) hits++;
            }
            emblem = n == 0 ? 0 : hits / (double)n;
        }

        var parts = new List<double> { shape, palette, balance, pattern };
        if (outline is { } o) parts.Add(o);
        if (emblem is { } e) parts.Add(e);
        return new ConceptIdentity(parts.Average(), shape, palette, balance, pattern, outline, emblem, texture);
    }

    /// <summary>Whether (r, g, b) is within <paramref name="tolerance"/> of a blend of <paramref name="color"/> with one of
    /// <paramref name="others"/> that holds at least half of <paramref name="color"/> (with <paramref name="towardsOthers"/>:
    /// at least half of the other colour).</summary>
    private static bool LeansTowards(double r, double g, double b, RgbColor color, IReadOnlyList<RgbColor> others, double tolerance, bool towardsOthers = false)
    {
        foreach (var other in others)
        {
            if (ColorGeometry.DistanceToSegment(r, g, b, color, other, out double t) <= tolerance && (towardsOthers ? t >= 0.5 : t <= 0.5)) return true;
        }
        return false;
    }

    /// <summary>Grows <paramref name="mask"/> by <paramref name="radius"/> pixels (Chebyshev distance).</summary>
    private static bool[] Dilate(bool[] mask, int w, int h, int radius)
    {
        var rows = new bool[mask.Length];
        for (int y = 0; y < h; y++)
        {
            int last = int.MinValue / 2;
            for (int x = 0; x < w; x++) { if (mask[y * w + x]) last = x; rows[y * w + x] = x - last <= radius; }
            last = int.MaxValue / 2;
            for (int x = w - 1; x >= 0; x--) { if (mask[y * w + x]) last = x; if (last - x <= radius) rows[y * w + x] = true; }
        }
        var result = new bool[mask.Length];
        for (int x = 0; x < w; x++)
        {
            int last = int.MinValue / 2;
            for (int y = 0; y < h; y++) { if (rows[y * w + x]) last = y; result[y * w + x] = y - last <= radius; }
            last = int.MaxValue / 2;
            for (int y = h - 1; y >= 0; y--) { if (rows[y * w + x]) last = y; if (last - y <= radius) result[y * w + x] = true; }
        }
        return result;
    }
}
