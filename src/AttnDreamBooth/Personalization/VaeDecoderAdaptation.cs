using System.Diagnostics;
using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Fine-tunes a VAE's decoder (and <c>post_quant_conv</c>) to draw given images back from draws of their posteriors,
/// the encoder untouched: the building block behind <see cref="PersonalizedModel.AdaptDecoderAsync"/>, usable on any
/// <see cref="AutoencoderKL"/>. All-or-nothing: a cancelled or failed adaptation puts the decoder's weights back as they
/// were. Runs on the calling thread, in the VAE's device; the images may be on any device.
/// </summary>
public static class VaeDecoderAdaptation
{
    /// <summary>The prefixes of the VAE's weights that adapt: everything after the latent.</summary>
    public static IReadOnlyList<string> TrainedPrefixes { get; } = ["decoder.", "post_quant_conv."];

    /// <summary>Whether the VAE weight <paramref name="name"/> is one the adaptation trains.</summary>
    public static bool IsTrained(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TrainedPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal));
    }

    /// <summary>Adapts <paramref name="vae"/>'s decoder to <paramref name="images"/> [N, in_channels, H, W] in [−1, 1]
    /// (H and W multiples of the VAE's downsampling factor). <see cref="DecoderAdaptationOptions.Images"/> is not used
    /// here: the images are given as they are.</summary>
    /// <exception cref="ArgumentException">The images are not [N, in_channels, H, W] with such sides, or an option is invalid.</exception>
    /// <exception cref="InvalidOperationException">The decoder is not float32, or the loss diverged.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the decoder is as it was.</exception>
    public static void Run(AutoencoderKL vae, Tensor images, DecoderAdaptationOptions options, IProgress<DecoderAdaptationProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(vae);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int factor = vae.DownsampleFactor;
        if (images.dim() != 4 || images.shape[0] < 1 || images.shape[1] != vae.Config.InChannels || images.shape[2] % factor != 0 || images.shape[3] % factor != 0
            || !images.is_floating_point())
            throw new ArgumentException($"The images must be floating-point [N ≥ 1, {vae.Config.InChannels}, H, W] with H and W multiples of {factor}; got "
                + $"{images.dtype} [{string.Join(", ", images.shape)}].", nameof(images));
        Run(vae, images, options, "images", Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, progress, ct);
    }

    internal static void Run(AutoencoderKL vae, Tensor images, DecoderAdaptationOptions options, string token, ILogger logger,
        IProgress<DecoderAdaptationProgress>? progress, CancellationToken ct)
    {
        var trained = vae.named_parameters().Where(p => IsTrained(p.name)).ToList();
        if (trained.Count == 0) throw new InvalidOperationException("The VAE has no decoder weights to adapt.");
        if (trained.Any(p => p.parameter.dtype != ScalarType.Float32))
            throw new InvalidOperationException($"The VAE decoder holds its weights in {trained.First(p => p.parameter.dtype != ScalarType.Float32).parameter.dtype}; "
                + "build the pipeline in float32 to adapt it (PersonalizationPipelineBuilder.WithDType).");
        var device = trained[0].parameter.device;
        int count = (int)images.shape[0];
        int batch = Math.Min(options.BatchSize, count);
        PipelineLog.DecoderAdaptationStarted(logger, token, count, options.Steps, options.LearningRate, batch, trained.Count, trained.Sum(p => p.parameter.numel()));

        var before = trained.Select(p => p.parameter.detach().clone()).ToArray();
        var requiredGrad = trained.Select(p => p.parameter.requires_grad).ToArray();
        bool wasTraining = vae.training;
        bool done = false;
        try
        {
            using var grad = enable_grad();
            Tensor pixels;
            using (var scope = NewDisposeScope()) pixels = images.detach().to(ScalarType.Float32, device).clone().MoveToOuterDisposeScope();
            using var pixelsOwner = pixels;
            Tensor means, stds;
            using (no_grad())
            using (var scope = NewDisposeScope())
            {
                // One photo at a time: at 512 px a batched encode would hold every photo's activations at once.
                var posteriors = pixels.split(1, dim: 0).Select(vae.Encode).ToArray();
                means = cat(posteriors.Select(p => p.Mean).ToArray(), 0).MoveToOuterDisposeScope();
                stds = cat(posteriors.Select(p => p.Std).ToArray(), 0).MoveToOuterDisposeScope();
                foreach (var posterior in posteriors) posterior.Dispose();
            }
            using var meansOwner = means;
            using var stdsOwner = stds;
            foreach (var (_, parameter) in trained) parameter.requires_grad = true;
            vae.eval();
            using var optimizer = new AdamWOptimizer(trained, AdamWOptions.Default, options.LearningRate);
            using var noise = new Generator(unchecked((ulong)options.Seed), CPU);
            var order = new SeededRandom(options.Seed);
            var queue = new Queue<int>();
            var clock = Stopwatch.StartNew();
            double first = double.NaN, last = double.NaN;
            for (int step = 0; step < options.Steps; step++)
            {
                ct.ThrowIfCancellationRequested();
                var indices = NextBatch(queue, order, count, batch);
                using (var scope = NewDisposeScope())
                {
                    optimizer.ZeroGrad();
                    using var index = tensor(indices, dtype: int64, device: device);
                    var mean = means.index_select(0, index);
                    var std = stds.index_select(0, index);
                    var target = pixels.index_select(0, index);
                    var draw = randn(mean.shape, dtype: mean.dtype, generator: noise).to(device);
                    var reconstruction = vae.Decode(mean.add(std.mul(draw), One));
                    var difference = reconstruction.sub(target);
                    var loss = difference.abs().mean().add(difference.pow(Kept(2)).mean(), One);
                    loss.backward();
                    last = loss.item<float>();
                    if (!double.IsFinite(last))
                        throw new InvalidOperationException($"The decoder adaptation diverged at step {step + 1} (loss {last}); lower DecoderAdaptationOptions.LearningRate.");
                    optimizer.Step();
                }
                if (step == 0) first = last;
                progress?.Report(new DecoderAdaptationProgress(step + 1, options.Steps, last, clock.Elapsed));
            }
            optimizer.ZeroGrad();
            PipelineLog.DecoderAdapted(logger, clock.Elapsed, first, last);
            done = true;
        }
        finally
        {
            using (no_grad())
            {
                for (int i = 0; i < trained.Count; i++)
                {
                    var parameter = trained[i].parameter;
                    parameter.grad = null;
                    if (!done) parameter.copy_(before[i]);
                    parameter.requires_grad = requiredGrad[i];
                    before[i].Dispose();
                }
            }
            vae.train(wasTraining);
        }
    }

    // Every photo once per round, rounds in a fresh seeded order; a batch may span two rounds.
    private static long[] NextBatch(Queue<int> queue, SeededRandom order, int count, int batch)
    {
        var indices = new long[batch];
        for (int i = 0; i < batch; i++)
        {
            if (queue.Count == 0)
            {
                var round = Enumerable.Range(0, count).ToList();
                order.Shuffle(round);
                foreach (int r in round) queue.Enqueue(r);
            }
            indices[i] = queue.Dequeue();
        }
        return indices;
    }
}
