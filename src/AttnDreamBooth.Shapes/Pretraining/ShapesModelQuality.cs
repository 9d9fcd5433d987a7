using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>One generated image of the quality measurement: what was asked and what the analyzer measured.</summary>
public sealed record QualitySample(string Prompt, long Seed, string Background, string Shape, string Color, string Size, string Position,
    string MeasuredBackground, string? MeasuredShape, string? MeasuredColor, string? MeasuredSize, string? MeasuredPosition);

/// <summary>The share of generated images whose measured attribute equals the prompt's, per attribute.</summary>
public sealed record QualityReport(int Prompts, int SeedsPerPrompt, GenerationOptions Options, IReadOnlyList<AttributeAccuracy> Attributes, IReadOnlyList<QualitySample> Samples);

/// <summary>
/// Measures a text-to-image model on prompts built from the world's held-out combinations (never rendered during
/// pretraining): each prompt names every attribute of one object ("a photo of a large red striped star on the left in the
/// snow"); the analyzer reads background, shape, colour, size and position back from every generated image (the largest
/// object counts; none found counts as wrong).
/// </summary>
public static class ShapesModelQuality
{
    /// <summary>The measured attributes.</summary>
    public static IReadOnlyList<string> AttributeNames { get; } = ["shape", "color", "background", "position", "size"];

    /// <summary>Generates <paramref name="seeds"/> images for each of <paramref name="prompts"/> held-out prompts with
    /// <paramref name="options"/> (batch size and seed are set here: seeds 0..seeds-1 per prompt) and scores them.</summary>
    public static async Task<QualityReport> MeasureAsync(PersonalizationPipeline pipeline, ShapesWorld world, int prompts, int seeds,
        GenerationOptions? options = null, long promptSeed = 20261205, IProgress<int>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(prompts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seeds);
        options ??= new GenerationOptions();
        var sampler = new ShapesSampler(world, promptSeed, new ShapesSamplerOptions { HeldOut = HeldOutPolicy.Only, SecondObjectProbability = 0 });
        var analyzer = new ShapesAnalyzer(world);
        var samples = new List<QualitySample>();
        for (int i = 0; i < prompts; i++)
        {
            ct.ThrowIfCancellationRequested();
            var scene = sampler.Describe(i).Scene;
            var target = scene.Objects[0];
            string prompt = ShapesCaptions.Full(scene);
            var images = await pipeline.GenerateAsync(prompt, options with { BatchSize = seeds, Seed = 0, HeatmapTokens = [] }, ct).ConfigureAwait(false);
            foreach (var image in images)
            {
                var analysis = analyzer.Analyze(image.Image);
                var found = analysis.Objects.MaxBy(o => o.Area);
                samples.Add(new QualitySample(prompt, image.Seed, scene.Background.Name, target.Shape.Name, target.Color.Name, target.Size.Name, target.Position.Name,
                    analysis.Background.Name, found?.Shape.Name, found?.Color.Name, found?.Size.Name, found?.Position.Name));
            }
            progress?.Report(i + 1);
        }
        AttributeAccuracy Score(string name, Func<QualitySample, bool> correct) => new(name, samples.Count(correct), samples.Count);
        return new QualityReport(prompts, seeds, options, [
            Score("shape", s => s.MeasuredShape == s.Shape),
            Score("color", s => s.MeasuredColor == s.Color),
            Score("background", s => s.MeasuredBackground == s.Background),
            Score("position", s => s.MeasuredPosition == s.Position),
            Score("size", s => s.MeasuredSize == s.Size),
        ], samples);
    }
}
