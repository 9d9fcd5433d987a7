using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The denoising error at one timestep with the image's own caption, the empty caption and another image's caption.</summary>
/// <param name="Timestep">The training timestep.</param>
/// <param name="OwnCaption">Mean epsilon MSE with each image's caption.</param>
/// <param name="EmptyCaption">Mean epsilon MSE with the empty caption (the unconditional model).</param>
/// <param name="OtherCaption">Mean epsilon MSE with a caption of a different image of the batch.</param>
public sealed record ConditioningError(int Timestep, double OwnCaption, double EmptyCaption, double OtherCaption)
{
    /// <summary>How much the own caption lowers the error compared to the empty one (0: the text is ignored).</summary>
    public double TextGain => EmptyCaption > 0 ? 1 - OwnCaption / EmptyCaption : 0;
}

/// <summary>
/// Measures how much a text-to-image model uses its text: on pretraining-distribution renders it compares the U-Net's
/// epsilon error given the right caption, the empty caption and a wrong caption at fixed timesteps, with the same
/// images, noise and timesteps for all three. A model that ignores its text has the same error for all three; a model
/// that uses it is best with its own caption and worst with a wrong one.
/// </summary>
public static class ShapesConditioningProbe
{
    /// <summary>The timesteps measured by default.</summary>
    public static IReadOnlyList<int> DefaultTimesteps { get; } = [50, 200, 400, 600, 800, 950];

    private const int BatchSize = 16;

    /// <summary>Measures <paramref name="images"/> renders of <paramref name="world"/> (sampler seed <paramref name="seed"/>)
    /// at each of <paramref name="timesteps"/>.</summary>
    public static IReadOnlyList<ConditioningError> Measure(StableDiffusionComponents model, ShapesWorld world, int images = 64,
        IReadOnlyList<int>? timesteps = null, long seed = 7, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 2);
        timesteps ??= DefaultTimesteps;
        var sampler = new ShapesSampler(world, seed, new ShapesSamplerOptions { EmptyCaptionProbability = 0, ImageSize = model.DefaultResolution });
        var samples = Enumerable.Range(0, images).Select(i => sampler.Sample(i)).ToList();
        // Another image's caption: the next sample of the whole set, so batches of one still get a wrong caption.
        var captionSets = new[]
        {
            samples.Select(s => s.Caption).ToList(),
            samples.Select(_ => "").ToList(),
            samples.Select((_, i) => samples[(i + 1) % images].Caption).ToList(),
        };
        var errors = MeasureCaptionSets(model, samples, captionSets, timesteps, seed, ct);
        return timesteps.Select((t, k) => new ConditioningError(t, errors[k][0], errors[k][1], errors[k][2])).ToList();
    }

    /// <summary>
    /// Which words of a caption the denoiser uses: on <paramref name="images"/> single-object renders it compares the error
    /// given the full caption (<see cref="ShapesCaptions.Full"/>) with the error given the same caption in which one
    /// attribute (<see cref="AttributeUse.Attributes"/>) names another value of the world, drawn at random per image.
    /// A word the model ignores leaves the error unchanged; a word it uses raises it.
    /// </summary>
    public static IReadOnlyList<AttributeUse> MeasureAttributeUse(StableDiffusionComponents model, ShapesWorld world, int images = 64,
        IReadOnlyList<int>? timesteps = null, long seed = 7, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 1);
        timesteps ??= DefaultTimesteps;
        var sampler = new ShapesSampler(world, seed,
            new ShapesSamplerOptions { EmptyCaptionProbability = 0, SecondObjectProbability = 0, ImageSize = model.DefaultResolution });
        var samples = Enumerable.Range(0, images).Select(i => sampler.Sample(i)).ToList();
        var random = new WorldRandom(seed);
        var captionSets = new List<List<string>> { samples.Select(s => ShapesCaptions.Full(s.Scene)).ToList() };
        foreach (string attribute in AttributeUse.Attributes)
            captionSets.Add(samples.Select(s => ShapesCaptions.Full(Swap(s.Scene, attribute, world, random))).ToList());
        var errors = MeasureCaptionSets(model, samples, captionSets, timesteps, seed, ct);
        return timesteps.Select((t, k) => new AttributeUse(t, errors[k][0],
            AttributeUse.Attributes.Select((a, i) => (a, errors[k][i + 1])).ToDictionary(p => p.a, p => p.Item2))).ToList();
    }

    /// <summary>
    /// Whether the text encoder tells the values of each attribute apart: on the captions of <paramref name="images"/>
    /// single-object renders (the same scenes and swaps as <see cref="MeasureAttributeUse"/> with the same seed) it measures
    /// how far the last hidden state moves when one attribute names another value. It needs no U-Net pass, so it separates
    /// "the encoder does not distinguish the words" from "the denoiser does not use what the encoder distinguishes".
    /// </summary>
    public static IReadOnlyList<TextSeparation> MeasureTextSeparation(StableDiffusionComponents model, ShapesWorld world, int images = 64,
        long seed = 7, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 1);
        var sampler = new ShapesSampler(world, seed,
            new ShapesSamplerOptions { EmptyCaptionProbability = 0, SecondObjectProbability = 0, ImageSize = model.DefaultResolution });
        var scenes = Enumerable.Range(0, images).Select(i => sampler.Sample(i).Scene).ToList();
        var random = new WorldRandom(seed);
        var full = scenes.Select(s => ShapesCaptions.Full(s)).ToList();
        var swapped = AttributeUse.Attributes
            .Select(a => (Attribute: a, Captions: scenes.Select(s => ShapesCaptions.Full(Swap(s, a, world, random))).ToList())).ToList();
        var device = model.Device;
        using var _ = no_grad();
        var sums = new double[swapped.Count, 2];
        for (int start = 0; start < images; start += BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            int count = Math.Min(BatchSize, images - start);
            Tensor Encode(List<string> captions) =>
                model.TextEncoder.Forward(model.Tokenizer.EncodeToTensor(captions.GetRange(start, count), device)).LastHiddenState;
            var reference = Encode(full);
            // Per image: the mean token norm, so an encoder with large outputs does not look better separated.
            var scale = reference.pow(Kept(2)).sum(-1).sqrt().mean([1]);
            for (int a = 0; a < swapped.Count; a++)
            {
                var move = Encode(swapped[a].Captions).sub(reference).pow(Kept(2)).sum(-1).sqrt();
                sums[a, 0] += move.mean([1]).div(scale).sum().item<float>();
                sums[a, 1] += move.amax([1]).div(scale).sum().item<float>();
            }
        }
        return swapped.Select((s, a) => new TextSeparation(s.Attribute, sums[a, 0] / images, sums[a, 1] / images)).ToList();
    }

    /// <summary>The scene with <paramref name="attribute"/> of its (only) object, or its background, replaced by a different value.</summary>
    internal static Scene Swap(Scene scene, string attribute, ShapesWorld world, WorldRandom random)
    {
        var o = scene.Objects[0];
        return attribute switch
        {
            "shape" => scene with { Objects = [o with { Shape = Other(world.Shapes, o.Shape, random) }] },
            "color" => scene with { Objects = [o with { Color = Other(world.Colors, o.Color, random) }] },
            "pattern" => scene with { Objects = [o with { Pattern = Other(world.Patterns, o.Pattern, random) }] },
            "size" => scene with { Objects = [o with { Size = Other(world.Sizes, o.Size, random) }] },
            "position" => scene with { Objects = [o with { Position = Other(world.Positions, o.Position, random) }] },
            "background" => scene with { Background = Other(world.Backgrounds, scene.Background, random) },
            _ => throw new ArgumentOutOfRangeException(nameof(attribute), attribute, "Not an attribute of a Shapes scene."),
        };
    }

    // Uniform over the values other than the current one.
    private static T Other<T>(IReadOnlyList<T> values, T current, WorldRandom random) where T : class
    {
        int index = random.NextInt(values.Count - 1);
        int currentIndex = IndexOf(values, current);
        return values[index >= currentIndex ? index + 1 : index];
    }

    private static int IndexOf<T>(IReadOnlyList<T> values, T value) where T : class
    {
        for (int i = 0; i < values.Count; i++)
            if (ReferenceEquals(values[i], value) || Equals(values[i], value)) return i;
        throw new ArgumentException("The scene uses a value that is not in the world.", nameof(value));
    }

    // errors[timestep index][caption set]: mean epsilon MSE over the samples, with the same latents, noise and timesteps for
    // every caption set.
    private static double[][] MeasureCaptionSets(StableDiffusionComponents model, IReadOnlyList<ShapesSample> samples,
        IReadOnlyList<IReadOnlyList<string>> captionSets, IReadOnlyList<int> timesteps, long seed, CancellationToken ct)
    {
        int images = samples.Count;
        using var scheduler = DiffusionSamplers.ForTraining(model.SchedulerConfig);
        using var generator = new Generator().manual_seed(seed);
        var result = new double[timesteps.Count][];
        using var _ = no_grad();
        var device = model.Device;
        // The latents and the captions' hidden states do not depend on the timestep: computed once per batch.
        var batches = new List<(int Count, Tensor Latents, Tensor[] Hidden)>();
        try
        {
            for (int start = 0; start < images; start += BatchSize)
            {
                using var scope = NewDisposeScope();
                var batch = samples.Skip(start).Take(BatchSize).ToList();
                using var posterior = model.Vae.Encode(ImageBatch.ToTensor(batch.Select(s => s.Image).ToList(), device));
                var latents = posterior.Mean.mul(Kept(model.Vae.ScalingFactor)).MoveToOuterDisposeScope();
                int first = start;
                var hidden = captionSets.Select(set => model.TextEncoder
                    .Forward(model.Tokenizer.EncodeToTensor(set.Skip(first).Take(batch.Count).ToList(), device))
                    .LastHiddenState.MoveToOuterDisposeScope()).ToArray();
                batches.Add((batch.Count, latents, hidden));
            }
            for (int k = 0; k < timesteps.Count; k++)
            {
                ct.ThrowIfCancellationRequested();
                int t = timesteps[k];
                var sums = new double[captionSets.Count];
                foreach (var b in batches)
                {
                    using var scope = NewDisposeScope();
                    var noise = randn(b.Latents.shape, generator: generator).to(device);
                    var steps = full([b.Count], Kept(t), ScalarType.Int64, device: device);
                    var noisy = scheduler.AddNoise(b.Latents, noise, steps);
                    // Every prediction type is compared in epsilon units.
                    for (int c = 0; c < captionSets.Count; c++)
                        sums[c] += scheduler.PredictedNoise(model.UNet.call(noisy, steps, b.Hidden[c]), noisy, t)
                            .sub(noise).pow(Kept(2)).mean([1, 2, 3]).sum().item<float>();
                }
                result[k] = sums.Select(s => s / images).ToArray();
            }
        }
        finally
        {
            foreach (var b in batches)
            {
                b.Latents.Dispose();
                foreach (var h in b.Hidden) h.Dispose();
            }
        }
        return result;
    }
}
