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
        int coreCount = 0, explained = 0, onPattern = 0, secondary = 0;
        var t = new double[mask.Length];
        for (int i = 0; i < mask.Length; i++)
        {
            t[i] = -1;
            if (!core[i]) continue;
            coreCount++;
            double r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
            if (ColorGeometry.DistanceToSegments(r, g, b, colors) <= tolerance) explained++;
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
            // The second pixel layer from the edge: inside the outline stroke, past the anti-aliased rim.
            var inner = Erode(mask, w, h, 1);
            var deep = Erode(mask, w, h, 2);
            int band = 0, hits = 0;
            for (int i = 0; i < mask.Length; i++)
            {
                if (!inner[i] || deep[i]) continue;
                band++;
                var c = new RgbColor(px[3 * i], px[3 * i + 1], px[3 * i + 2]);
                double d = ColorGeometry.Distance(c, look.Outline);
                if (d <= tolerance || (d < ColorGeometry.Distance(c, look.Primary) && d < ColorGeometry.Distance(c, look.Secondary)
                    && ColorGeometry.DistanceToSegments(c.R, c.G, c.B, colors) <= tolerance)) hits++;
            }
            outline = band == 0 ? 0 : hits / (double)band;
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
                if (ColorGeometry.Distance(new RgbColor(px[3 * i], px[3 * i + 1], px[3 * i + 2]), look.EmblemColor) <= tolerance) hits++;
            }
            emblem = n == 0 ? 0 : hits / (double)n;
        }

        var parts = new List<double> { shape, palette, balance, pattern };
        if (outline is { } o) parts.Add(o);
        if (emblem is { } e) parts.Add(e);
        return new ConceptIdentity(parts.Average(), shape, palette, balance, pattern, outline, emblem, texture);
    }
}
