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
/// <param name="Prompts">Prompts measured (held-out combinations unless <see cref="Combinations"/> says otherwise).</param>
/// <param name="SeedsPerPrompt">Images per prompt.</param>
/// <param name="Attributes">Accuracy per attribute (<see cref="ShapesModelQuality.AttributeNames"/>).</param>
/// <param name="Samples">Every image's prompt and measurements.</param>
/// <param name="Options">The generation settings; null when the images are VAE reconstructions of renders
/// (<see cref="ShapesModelQuality.MeasureReconstruction"/>).</param>
public sealed record QualityReport(int Prompts, int SeedsPerPrompt, GenerationOptions? Options, IReadOnlyList<AttributeAccuracy> Attributes, IReadOnlyList<QualitySample> Samples)
{
    /// <summary>Which combinations the prompts were built from: <see cref="HeldOutPolicy.Only"/> (held out of pretraining, the
    /// quality measurement) or <see cref="HeldOutPolicy.Exclude"/> (combinations pretraining saw: a development split on
    /// which sampler settings can be chosen without looking at the held-out prompts).</summary>
    public HeldOutPolicy Combinations { get; init; } = HeldOutPolicy.Only;
}

/// <summary>
/// Measures a text-to-image model on prompts built from the world's held-out combinations (never rendered during
/// pretraining): each prompt names every attribute of one object ("a photo of a large red striped star on the left in the
/// snow"); the analyzer reads background, shape, colour, size and position back from every generated image (the largest
/// object counts; none found counts as wrong).
/// </summary>
public static class ShapesModelQuality
{
    /// <summary>
    /// The classifier-free guidance scale the quality of the shipped model is measured with (the CLI's <c>shapes quality</c>
    /// default). Chosen on the development split of combinations pretraining saw (<see cref="HeldOutPolicy.Exclude"/>), by a
    /// rule written down before the sweep, never on the held-out prompts: every attribute read better at lower guidance
    /// than at the library's 7.5, which suits photographs of an open-ended world, not this small one
    /// (docs/shapes-world.md, "Guidance").
    /// </summary>
    public const double DefaultGuidanceScale = 2.0;

    /// <summary>The measured attributes.</summary>
    public static IReadOnlyList<string> AttributeNames { get; } = ["shape", "color", "background", "position", "size"];

    /// <summary>Generates <paramref name="seeds"/> images for each of <paramref name="prompts"/> held-out prompts with
    /// <paramref name="options"/> (batch size and seed are set here: seeds 0..seeds-1 per prompt) and scores them.
    /// <c>combinations</c> <see cref="HeldOutPolicy.Exclude"/> builds the prompts from combinations pretraining saw instead
    /// (a development split for choosing settings without looking at the held-out prompts).</summary>
    /// <remarks><c>onImage</c> receives every image with the sample scored from it as it is measured (e.g.
    /// <see cref="ShapesQualityGrid.Add"/>); the measurement itself keeps no image.</remarks>
    public static async Task<QualityReport> MeasureAsync(PersonalizationPipeline pipeline, ShapesWorld world, int prompts, int seeds,
        GenerationOptions? options = null, long promptSeed = 20261205, Action<QualityImage>? onImage = null, IProgress<int>? progress = null,
        HeldOutPolicy combinations = HeldOutPolicy.Only, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(prompts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seeds);
        if (!Enum.IsDefined(combinations)) throw new ArgumentOutOfRangeException(nameof(combinations), combinations, "Expected Only or Exclude.");
        options ??= new GenerationOptions();
        var sampler = new ShapesSampler(world, promptSeed, new ShapesSamplerOptions { HeldOut = combinations, SecondObjectProbability = 0 });
        var analyzer = new ShapesAnalyzer(world);
        var samples = new List<QualitySample>();
        var indices = DistinctPromptIndices(sampler, prompts, ct);
        for (int i = 0; i < prompts; i++)
        {
            ct.ThrowIfCancellationRequested();
            var scene = sampler.Describe(indices[i]).Scene;
            var target = scene.Objects[0];
            string prompt = ShapesCaptions.Full(scene);
            var images = await pipeline.GenerateAsync(prompt, options with { BatchSize = seeds, Seed = 0, HeatmapTokens = [] }, ct).ConfigureAwait(false);
            foreach (var image in images)
            {
                var sample = Score(prompt, image.Seed, target, scene.Background, analyzer.Analyze(image.Image));
                samples.Add(sample);
                onImage?.Invoke(new QualityImage(i, sample, image.Image));
            }
            progress?.Report(i + 1);
        }
        return Report(prompts, seeds, options, samples) with { Combinations = combinations };
    }

    /// <summary>
    /// The ceiling the VAE puts on <see cref="MeasureAsync"/>: renders the same held-out scenes the prompts describe
    /// (one image each), encodes them to the posterior's mode, decodes, and scores the reconstructions with the analyzer
    /// the same way. A generated image can read no better than the VAE can reproduce it, so an attribute this measures
    /// low cannot be fixed by training the U-Net longer.
    /// </summary>
    /// <remarks><c>onImage</c> receives every reconstruction with the sample scored from it (seed 0), as in <see cref="MeasureAsync"/>.</remarks>
    public static QualityReport MeasureReconstruction(AutoencoderKL vae, ShapesWorld world, int prompts, long promptSeed = 20261205,
        Action<QualityImage>? onImage = null, IProgress<int>? progress = null, CancellationToken ct = default)
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
        var indices = DistinctPromptIndices(sampler, prompts, ct);
        using var _ = no_grad();
        for (int i = 0; i < prompts; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sample = sampler.Sample(indices[i]);
            var reconstruction = Reconstruct(vae, sample.Image, device);
            var scored = Score(ShapesCaptions.Full(sample.Scene), 0, sample.Scene.Objects[0], sample.Scene.Background, analyzer.Analyze(reconstruction));
            samples.Add(scored);
            onImage?.Invoke(new QualityImage(i, scored, reconstruction));
            progress?.Report(i + 1);
        }
        return Report(prompts, 1, null, samples);
    }

    /// <summary>
    /// The ceiling the VAE puts on personalization: renders each concept's photos, encodes them to the posterior's mode,
    /// decodes, and scores the concept identity (<see cref="ShapesAnalyzer.Identify(RgbImage, ConceptSpec)"/>) of the
    /// photos and of their reconstructions. A personalized model generates through the same decoder, so a concept whose
    /// reconstructions score below <see cref="Experiments.ConceptJudge.PresenceThreshold"/> cannot be judged present
    /// whatever the training.
    /// </summary>
    public static IReadOnlyList<ConceptReconstruction> MeasureConceptReconstruction(AutoencoderKL vae, ShapesWorld world, IReadOnlyList<ConceptSpec> concepts,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concepts);
        var analyzer = new ShapesAnalyzer(world);
        var device = vae.parameters().First().device;
        var results = new List<ConceptReconstruction>();
        using var _ = no_grad();
        foreach (var concept in concepts)
        {
            ct.ThrowIfCancellationRequested();
            var photos = concept.RenderPhotos(world, vae.Config.SampleSize).Select(p => p.Image).ToList();
            var reconstructions = photos.Select(p => Reconstruct(vae, p, device)).ToList();
            results.Add(new ConceptReconstruction(concept.Name, [.. photos.Select(p => analyzer.Identify(p, concept))],
                [.. reconstructions.Select(r => analyzer.Identify(r, concept))], photos, reconstructions));
        }
        return results;
    }

    /// <summary>The image encoded to the posterior's mode and decoded (call under no_grad).</summary>
    private static RgbImage Reconstruct(AutoencoderKL vae, RgbImage image, Device device)
    {
        using var scope = NewDisposeScope();
        var decoded = vae.Decode(vae.EncodeLatents(ImageBatch.ToTensor([image], device)));
        return RgbImage.FromTensor(decoded[0].to(CPU));
    }

    // The sampler draws held-out scenes independently, so the same full caption comes back (177 distinct texts in the
    // first 200 draws): a repeated prompt with the same seeds is the same image counted twice. Walking the draws and
    // keeping the first of each caption keeps the measurement's order and seeds and makes every prompt count once.
    private static long[] DistinctPromptIndices(ShapesSampler sampler, int prompts, CancellationToken ct)
    {
        const int DrawsPerPrompt = 50;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var indices = new long[prompts];
        int found = 0;
        for (long index = 0; found < prompts; index++)
        {
            if (index >= (long)prompts * DrawsPerPrompt)
                throw new ArgumentOutOfRangeException(nameof(prompts), prompts,
                    $"The world's {(sampler.Options.HeldOut == HeldOutPolicy.Only ? "held-out" : "seen")} combinations give only {found} distinct full prompts in {index} draws; ask for at most {found}.");
            if ((index & 1023) == 0)
                ct.ThrowIfCancellationRequested();
            if (seen.Add(ShapesCaptions.Full(sampler.Describe(index).Scene)))
                indices[found++] = index;
        }
        return indices;
    }

    private static QualitySample Score(string prompt, long seed, SceneObject target, BackgroundSpec background, SceneAnalysis analysis)
    {
        // The largest object counts; none found counts as wrong for every object attribute.
        var found = analysis.Objects.MaxBy(o => o.Area);
        return new QualitySample(prompt, seed, background.Name, target.Shape.Name, target.Color.Name, target.Size.Name, target.Position.Name,
            analysis.Background.Name, found?.Shape.Name, found?.Color.Name, found?.Size.Name, found?.Position.Name);
    }

    /// <summary>What <paramref name="sample"/> asked for and what the analyzer measured for one of <see cref="AttributeNames"/>
    /// (measured is null when no object was found); the table and the grid both read it from here.</summary>
    internal static (string Asked, string? Measured) Attribute(QualitySample sample, string name) => name switch
    {
        "shape" => (sample.Shape, sample.MeasuredShape),
        "color" => (sample.Color, sample.MeasuredColor),
        "background" => (sample.Background, sample.MeasuredBackground),
        "position" => (sample.Position, sample.MeasuredPosition),
        "size" => (sample.Size, sample.MeasuredSize),
        _ => throw new ArgumentException($"'{name}' is not a measured attribute ({string.Join(", ", AttributeNames)}).", nameof(name)),
    };

    internal static bool IsCorrect(QualitySample sample, string name)
    {
        var (asked, measured) = Attribute(sample, name);
        return measured == asked;
    }

    private static QualityReport Report(int prompts, int seeds, GenerationOptions? options, List<QualitySample> samples) =>
        new(prompts, seeds, options, AttributeNames.Select(name => new AttributeAccuracy(name, samples.Count(s => IsCorrect(s, name)), samples.Count)).ToList(), samples);
}
