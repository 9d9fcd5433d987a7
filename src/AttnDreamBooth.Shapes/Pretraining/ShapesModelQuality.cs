using AttnDreamBooth.Imaging;
using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>One generated image of the quality measurement: what was asked and what the analyzer measured.</summary>
public sealed record QualitySample(string Prompt, long Seed, string Background, string Shape, string Color, string Size, string Position,
    string MeasuredBackground, string? MeasuredShape, string? MeasuredColor, string? MeasuredSize, string? MeasuredPosition);

/// <summary>The share of generated images whose measured attribute equals the prompt's, per attribute.</summary>
/// <param name="Prompts">Held-out prompts measured.</param>
/// <param name="SeedsPerPrompt">Images per prompt.</param>
/// <param name="Attributes">Accuracy per attribute (<see cref="ShapesModelQuality.AttributeNames"/>).</param>
/// <param name="Samples">Every image's prompt and measurements.</param>
/// <param name="Options">The generation settings; null when the images are VAE reconstructions of renders
/// (<see cref="ShapesModelQuality.MeasureReconstruction"/>).</param>
public sealed record QualityReport(int Prompts, int SeedsPerPrompt, GenerationOptions? Options, IReadOnlyList<AttributeAccuracy> Attributes, IReadOnlyList<QualitySample> Samples);

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
                samples.Add(Score(prompt, image.Seed, target, scene.Background, analyzer.Analyze(image.Image)));
            progress?.Report(i + 1);
        }
        return Report(prompts, seeds, options, samples);
    }

    /// <summary>
    /// The ceiling the VAE puts on <see cref="MeasureAsync"/>: renders the same held-out scenes the prompts describe
    /// (one image each), encodes them to the posterior's mode, decodes, and scores the reconstructions with the analyzer
    /// the same way. A generated image can read no better than the VAE can reproduce it, so an attribute this measures
    /// low cannot be fixed by training the U-Net longer.
    /// </summary>
    public static QualityReport MeasureReconstruction(AutoencoderKL vae, ShapesWorld world, int prompts, long promptSeed = 20261205,
        IProgress<int>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(prompts);
        var sampler = new ShapesSampler(world, promptSeed, new ShapesSamplerOptions
        {
            HeldOut = HeldOutPolicy.Only, SecondObjectProbability = 0, ImageSize = vae.Config.SampleSize,
        });
        var analyzer = new ShapesAnalyzer(world);
        var samples = new List<QualitySample>();
        var device = vae.parameters().First().device;
        using var _ = no_grad();
        for (int i = 0; i < prompts; i++)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var sample = sampler.Sample(i);
            var decoded = vae.Decode(vae.EncodeLatents(ImageBatch.ToTensor([sample.Image], device)));
            var reconstruction = RgbImageConversions.FromTensor(decoded[0].to(CPU));
            samples.Add(Score(ShapesCaptions.Full(sample.Scene), 0, sample.Scene.Objects[0], sample.Scene.Background, analyzer.Analyze(reconstruction)));
            progress?.Report(i + 1);
        }
        return Report(prompts, 1, null, samples);
    }

    private static QualitySample Score(string prompt, long seed, SceneObject target, BackgroundSpec background, SceneAnalysis analysis)
    {
        // The largest object counts; none found counts as wrong for every object attribute.
        var found = analysis.Objects.MaxBy(o => o.Area);
        return new QualitySample(prompt, seed, background.Name, target.Shape.Name, target.Color.Name, target.Size.Name, target.Position.Name,
            analysis.Background.Name, found?.Shape.Name, found?.Color.Name, found?.Size.Name, found?.Position.Name);
    }

    private static QualityReport Report(int prompts, int seeds, GenerationOptions? options, List<QualitySample> samples)
    {
        AttributeAccuracy Accuracy(string name, Func<QualitySample, bool> correct) => new(name, samples.Count(correct), samples.Count);
        return new QualityReport(prompts, seeds, options, [
            Accuracy("shape", s => s.MeasuredShape == s.Shape),
            Accuracy("color", s => s.MeasuredColor == s.Color),
            Accuracy("background", s => s.MeasuredBackground == s.Background),
            Accuracy("position", s => s.MeasuredPosition == s.Position),
            Accuracy("size", s => s.MeasuredSize == s.Size),
        ], samples);
    }
}
