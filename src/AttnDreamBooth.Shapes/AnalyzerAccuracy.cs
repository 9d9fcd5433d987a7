namespace AttnDreamBooth.Shapes;

/// <summary>One attribute's accuracy over a set of renders.</summary>
/// <param name="Attribute">Attribute name (background, objects, shape, color, pattern, size, position, mask, centroid, area).</param>
/// <param name="Correct">Correct measurements.</param>
/// <param name="Total">Measurements.</param>
public sealed record AttributeAccuracy(string Attribute, int Correct, int Total)
{
    /// <summary>Correct / Total (1 when nothing was measured).</summary>
    public double Accuracy => Total == 0 ? 1 : Correct / (double)Total;
}

/// <summary>A wrong measurement, for diagnosis.</summary>
/// <param name="Index">Sample index.</param>
/// <param name="Attribute">Attribute name.</param>
/// <param name="Expected">Ground truth.</param>
/// <param name="Measured">What the analyzer reported.</param>
public sealed record AnalyzerMistake(long Index, string Attribute, string Expected, string Measured);

/// <summary>The analyzer's accuracy per attribute on fresh renders, with its mistakes.</summary>
/// <param name="Seed">Sampler seed of the renders.</param>
/// <param name="Count">Number of renders.</param>
/// <param name="ImageSize">Image side.</param>
/// <param name="HeldOut">Whether the renders were the pretraining distribution or held-out combinations only.</param>
/// <param name="Attributes">Accuracy per attribute.</param>
/// <param name="Mistakes">Every wrong measurement.</param>
public sealed record AnalyzerAccuracyReport(long Seed, int Count, int ImageSize, HeldOutPolicy HeldOut, IReadOnlyList<AttributeAccuracy> Attributes, IReadOnlyList<AnalyzerMistake> Mistakes)
{
    /// <summary>The accuracy of <paramref name="attribute"/>.</summary>
    /// <exception cref="KeyNotFoundException">Unknown attribute.</exception>
    public AttributeAccuracy this[string attribute] =>
        Attributes.FirstOrDefault(a => a.Attribute == attribute) ?? throw new KeyNotFoundException($"No attribute '{attribute}' in the report.");
}

/// <summary>
/// Measures <see cref="ShapesAnalyzer"/> against ground truth on renders from <see cref="ShapesSampler"/> (the
/// pretraining distribution with a quarter of two-object scenes, or only held-out combinations). Each ground-truth
/// object is matched to the measured object nearest its centroid. Mask = IoU ≥ 0.8 with the true silhouette;
/// centroid = within 1 px; area = within 10 %.
/// </summary>
public static class AnalyzerAccuracy
{
    /// <summary>Attribute names in report order.</summary>
    public static IReadOnlyList<string> AttributeNames { get; } = ["background", "objects", "shape", "color", "pattern", "size", "position", "mask", "centroid", "area"];

    /// <summary>Renders <paramref name="count"/> samples with <paramref name="seed"/> (optionally degraded) and scores every attribute.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not positive.</exception>
    public static AnalyzerAccuracyReport Measure(ShapesWorld world, long seed, int count, int imageSize = 64, HeldOutPolicy heldOut = HeldOutPolicy.Exclude, IProgress<int>? progress = null, CancellationToken cancellationToken = default, ImageDegradation? degradation = null)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var analyzer = new ShapesAnalyzer(world);
        var sampler = new ShapesSampler(world, seed, new ShapesSamplerOptions { ImageSize = imageSize, SecondObjectProbability = 0.25, HeldOut = heldOut });
        var correct = AttributeNames.ToDictionary(a => a, _ => 0);
        var total = AttributeNames.ToDictionary(a => a, _ => 0);
        var mistakes = new List<AnalyzerMistake>();
        void Score(long index, string attribute, string expected, string measured)
        {
            total[attribute]++;
            if (expected == measured) correct[attribute]++;
            else mistakes.Add(new AnalyzerMistake(index, attribute, expected, measured));
        }

        for (int i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sample = sampler.Sample(i);
            var image = degradation is null ? sample.Image : degradation.Apply(sample.Image, ShapesSampler.Mix(~seed, i));
            var analysis = analyzer.Analyze(image);
            Score(i, "background", sample.Scene.Background.Name, analysis.Background.Name);
            Score(i, "objects", sample.Scene.Objects.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), analysis.Objects.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            for (int k = 0; k < sample.Scene.Objects.Count; k++)
            {
                var truth = sample.Scene.Objects[k];
                var mask = sample.Masks[k];
                var (tx, ty) = mask.Centroid;
                var found = analysis.Objects.MinBy(o => (o.CentroidX - tx) * (o.CentroidX - tx) + (o.CentroidY - ty) * (o.CentroidY - ty));
                Score(i, "shape", truth.Shape.Name, found?.Shape.Name ?? "-");
                Score(i, "color", truth.Color.Name, found?.Color.Name ?? "-");
                Score(i, "pattern", truth.Pattern.Name, found?.Pattern.Name ?? "-");
                Score(i, "size", truth.Size.Name, found?.Size.Name ?? "-");
                Score(i, "position", truth.Position.Name, found?.Position.Name ?? "-");
                double iou = found is null ? 0 : found.Mask.IoU(mask);
                Score(i, "mask", "iou>=0.8", iou >= 0.8 ? "iou>=0.8" : $"iou={iou:F2}");
                double dc = found is null ? double.PositiveInfinity : Math.Sqrt((found.CentroidX - tx) * (found.CentroidX - tx) + (found.CentroidY - ty) * (found.CentroidY - ty));
                Score(i, "centroid", "<=1px", dc <= 1 ? "<=1px" : $"{dc:F2}px");
                double area = mask.Area, rel = found is null ? double.PositiveInfinity : Math.Abs(found.Area - area) / area;
                Score(i, "area", "<=10%", rel <= 0.1 ? "<=10%" : $"{rel:P0}");
            }
            progress?.Report(i + 1);
        }
        return new AnalyzerAccuracyReport(seed, count, imageSize, heldOut, [.. AttributeNames.Select(a => new AttributeAccuracy(a, correct[a], total[a]))], mistakes);
    }
}
