using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;
using static TorchSharp.torch;

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
        using var scheduler = DdpmScheduler.FromConfig(model.SchedulerConfig.For(SchedulerClass.Ddpm));
        using var generator = new Generator().manual_seed(seed);
        var result = new List<ConditioningError>();
        using var _ = no_grad();
        var device = model.Device;
        // The latents and the three captions' hidden states do not depend on the timestep: computed once per batch.
        var batches = new List<(int Count, Tensor Latents, Tensor Own, Tensor Empty, Tensor Other)>();
        try
        {
            for (int start = 0; start < images; start += BatchSize)
            {
                using var scope = NewDisposeScope();
                var batch = samples.Skip(start).Take(BatchSize).ToList();
                using var posterior = model.Vae.Encode(ImageBatch.ToTensor(batch.Select(s => s.Image).ToList(), device));
                Tensor Hidden(IReadOnlyList<string> captions) =>
                    model.TextEncoder.Forward(model.Tokenizer.EncodeToTensor(captions, device)).LastHiddenState.MoveToOuterDisposeScope();
                var latents = posterior.Mean.mul(model.Vae.ScalingFactor).MoveToOuterDisposeScope();
                // Another image's caption: the next sample of the whole set, so batches of one still get a wrong caption.
                int first = start;
                batches.Add((batch.Count, latents, Hidden(batch.Select(s => s.Caption).ToList()), Hidden(batch.Select(_ => "").ToList()),
                    Hidden(batch.Select((s, i) => samples[(first + i + 1) % images].Caption).ToList())));
            }
            foreach (int t in timesteps)
            {
                ct.ThrowIfCancellationRequested();
                double own = 0, empty = 0, other = 0;
                float sqrtAlpha = MathF.Sqrt(scheduler.Schedule.AlphasCumprod[t]);
                float sqrtBeta = MathF.Sqrt(1 - scheduler.Schedule.AlphasCumprod[t]);
                foreach (var b in batches)
                {
                    using var scope = NewDisposeScope();
                    var noise = randn(b.Latents.shape, generator: generator).to(device);
                    var steps = full([b.Count], t, ScalarType.Int64, device: device);
                    var noisy = scheduler.AddNoise(b.Latents, noise, steps);
                    // Every prediction type is compared in epsilon units.
                    double Error(Tensor hidden) =>
                        SampleOps.Predict(scheduler.PredictionType, model.UNet.call(noisy, steps, hidden), noisy, sqrtAlpha, sqrtBeta).Epsilon
                            .sub(noise).square().mean([1, 2, 3]).sum().item<float>();
                    own += Error(b.Own);
                    empty += Error(b.Empty);
                    other += Error(b.Other);
                }
                result.Add(new ConditioningError(t, own / images, empty / images, other / images));
            }
        }
        finally
        {
            foreach (var b in batches)
            {
                b.Latents.Dispose();
                b.Own.Dispose();
                b.Empty.Dispose();
                b.Other.Dispose();
            }
        }
        return result;
    }
}
