using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>
/// Judges generated images of a concept with the analyzer: background and position as asked, identity of the object
/// most like the concept, and how well a cross-attention map covers that object.
/// </summary>
public sealed class ConceptJudge
{
    /// <summary>
    /// Identity score from which the concept counts as present: halfway between what the analyzer measures on renders of
    /// the concepts themselves (≥ 0.85) and on other objects of the same category (≤ 0.6).
    /// </summary>
    public const double PresenceThreshold = 0.7;

    /// <summary>A map cell counts as attended when its normalised value is at least this (maps are scaled to [0, 1]).</summary>
    public const double HeatmapThreshold = 0.5;

    private readonly ShapesAnalyzer _analyzer;

    /// <summary>A judge of <paramref name="concept"/> in <paramref name="world"/>.</summary>
    public ConceptJudge(ShapesWorld world, ConceptSpec concept)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concept);
        _analyzer = new ShapesAnalyzer(world);
        Concept = concept;
    }

    /// <summary>The concept judged.</summary>
    public ConceptSpec Concept { get; }

    /// <summary>
    /// Judges <paramref name="image"/>, generated for <paramref name="prompt"/>. The concept's object is the one most like
    /// the concept (the larger on a tie). When the prompt asks for a second object, the other object found is that one; if
    /// only one object was found, it counts as the second object when it has the second object's shape and does not look
    /// like the concept (identity below <see cref="PresenceThreshold"/>) — the concept is then missing (identity 0).
    /// </summary>
    /// <param name="image">The generated image.</param>
    /// <param name="prompt">What was asked.</param>
    /// <param name="promptText">The prompt text as given (recorded in the verdict).</param>
    /// <param name="seed">The image's seed (recorded in the verdict).</param>
    /// <param name="heatmap">The subject token's map: row-major values in [0, 1] on a square grid, or null.</param>
    /// <param name="heatmapsByResolution">The subject token's map per layer resolution (keyed by the layers' grid height,
    /// as <see cref="StableDiffusion.AttentionHeatmap.ByLayerResolution"/>), each judged like <paramref name="heatmap"/>;
    /// or null.</param>
    public ConceptImageVerdict Judge(RgbImage image, ConceptPrompt prompt, string promptText, long seed, IReadOnlyList<float>? heatmap = null,
        IReadOnlyDictionary<int, IReadOnlyList<float>>? heatmapsByResolution = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(prompt);
        var analysis = _analyzer.Analyze(image);
        var ranked = analysis.Objects
            .Select(o => (Object: o, Identity: _analyzer.Identify(image, o, Concept)))
            .OrderByDescending(c => c.Identity.Score)
            .ToList();
        ObjectAnalysis? subject = ranked.Count > 0 ? ranked[0].Object : null;
        var identity = ranked.Count > 0 ? ranked[0].Identity : ConceptIdentity.None;
        ObjectAnalysis? second = null;
        if (prompt.SecondObject is { } wanted)
        {
            if (ranked.Count >= 2)
            {
                second = ranked[1].Object;
            }
            else if (subject is not null && identity.Score < PresenceThreshold && subject.Shape == wanted.Shape)
            {
                (second, subject, identity) = (subject, null, ConceptIdentity.None);
            }
        }
        double? iou = subject is not null && heatmap is not null ? MaskIoU(heatmap, subject.Mask) : null;
        var iouByResolution = new SortedDictionary<int, double?>(Comparer<int>.Create((a, b) => b.CompareTo(a)));
        foreach (var (h, map) in heatmapsByResolution ?? new Dictionary<int, IReadOnlyList<float>>())
            iouByResolution[h] = subject is not null ? MaskIoU(map, subject.Mask) : null;
        var checks = prompt.RequestedAttributes.Select(a => new PromptAttributeCheck(a.Key, a.Value, a.Key switch
        {
            PromptAttributes.Background => analysis.Background.Name,
            PromptAttributes.Position => subject?.Position.Name,
            PromptAttributes.Size => subject?.Size.Name,
            PromptAttributes.SecondShape => second?.Shape.Name,
            PromptAttributes.SecondColor => second?.Color.Name,
            PromptAttributes.SecondPattern => second?.Pattern.Name,
            PromptAttributes.SecondSize => second?.Size.Name,
            _ => null,
        })).ToArray();
        return new ConceptImageVerdict(promptText, seed, prompt.Background.Name, analysis.Background.Name, prompt.Position?.Name,
            subject?.Position.Name, identity, iou)
        { Attributes = checks, HeatmapIoUByResolution = iouByResolution };
    }

    /// <summary>
    /// IoU of the cells of a square map with value ≥ <see cref="HeatmapThreshold"/> and the cells at least half covered by
    /// <paramref name="mask"/> (the mask is averaged over each cell's pixels).
    /// </summary>
    /// <exception cref="ArgumentException">The map is not square or the image side is not a multiple of its side.</exception>
    public static double MaskIoU(IReadOnlyList<float> heatmap, ObjectMask mask)
    {
        ArgumentNullException.ThrowIfNull(heatmap);
        ArgumentNullException.ThrowIfNull(mask);
        int side = (int)Math.Round(Math.Sqrt(heatmap.Count));
        if (side * side != heatmap.Count || side == 0) throw new ArgumentException($"The map has {heatmap.Count} values, not a square grid.", nameof(heatmap));
        if (mask.Width != mask.Height || mask.Width % side != 0)
            throw new ArgumentException($"The {mask.Width}×{mask.Height} mask does not divide into a {side}×{side} grid.", nameof(mask));
        int cell = mask.Width / side;
        int intersection = 0, union = 0;
        for (int gy = 0; gy < side; gy++)
        {
            for (int gx = 0; gx < side; gx++)
            {
                double coverage = 0;
                for (int y = gy * cell; y < (gy + 1) * cell; y++)
                    for (int x = gx * cell; x < (gx + 1) * cell; x++)
                        coverage += mask.Coverage[y * mask.Width + x];
                bool inMask = coverage / (cell * cell * 255.0) >= 0.5;
                bool attended = heatmap[gy * side + gx] >= HeatmapThreshold;
                if (inMask && attended) intersection++;
                if (inMask || attended) union++;
            }
        }
        return union == 0 ? 0 : (double)intersection / union;
    }
}
