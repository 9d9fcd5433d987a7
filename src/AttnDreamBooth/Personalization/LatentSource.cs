using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Training;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Produces the scaled training latents of a batch. By default each image's augmented variants are encoded once
/// and their posteriors (mean, std) cached, so a step only samples; optionally every step encodes a fresh
/// augmentation, as the reference implementation does.
/// </summary>
internal sealed class LatentSource : IDisposable
{
    private readonly AutoencoderKL _vae;
    private readonly Func<int, SeededRandom, Tensor> _augment;
    private readonly int _imageCount;
    private readonly bool _fresh;
    private Tensor? _means;
    private Tensor? _stds;

    /// <param name="vae">The frozen VAE.</param>
    /// <param name="imageCount">Number of concept images.</param>
    /// <param name="augment">Returns image i augmented with the given random source, [3, H, W] in [-1, 1] on the CPU.</param>
    /// <param name="variantsPerImage">Cached variants per image.</param>
    /// <param name="fresh">Encode a new augmentation every step.</param>
    /// <param name="streams">Random streams (augmentation and latent sampling are consumed while caching).</param>
    public LatentSource(AutoencoderKL vae, int imageCount, Func<int, SeededRandom, Tensor> augment, int variantsPerImage, bool fresh, RandomStreams streams)
    {
        _vae = vae;
        _augment = augment;
        _imageCount = imageCount;
        _fresh = fresh;
        if (!fresh) BuildCache(variantsPerImage, streams);
    }

    /// <summary>Number of cached variants (0 in fresh mode).</summary>
    public int CachedCount => _means is null ? 0 : (int)_means.shape[0];

    private void BuildCache(int variantsPerImage, RandomStreams streams)
    {
        var means = new List<Tensor>();
        var stds = new List<Tensor>();
        using var _ = no_grad();
        for (int image = 0; image < _imageCount; image++)
        {
            for (int v = 0; v < variantsPerImage; v++)
            {
                using var scope = NewDisposeScope();
                var pixels = _augment(image, streams.Augmentation).unsqueeze(0).to(Device);
                using var posterior = _vae.Encode(pixels.to_type(VaeDType));
                means.Add(posterior.Mean.to_type(float32).cpu().MoveToOuterDisposeScope());
                stds.Add(posterior.Std.to_type(float32).cpu().MoveToOuterDisposeScope());
            }
        }
        _means = cat(means, 0);
        _stds = cat(stds, 0);
        foreach (var t in means.Concat(stds)) t.Dispose();
    }

    private Device Device => _vae.parameters().First().device;

    private ScalarType VaeDType => _vae.parameters().First().dtype;

    /// <summary>Samples <paramref name="batchSize"/> scaled latents on <paramref name="device"/>.</summary>
    public Tensor Sample(int batchSize, RandomStreams streams, Device device)
    {
        using var scope = NewDisposeScope();
        Tensor mean, std;
        if (_fresh)
        {
            var indices = randint(0, _imageCount, [batchSize], dtype: int64, generator: streams.DataOrder);
            var images = new List<Tensor>();
            for (int i = 0; i < batchSize; i++) images.Add(_augment((int)indices[i].item<long>(), streams.Augmentation));
            using var _ = no_grad();
            using var posterior = _vae.Encode(stack(images).to(VaeDType, Device));
            mean = posterior.Mean.to_type(float32).cpu();
            std = posterior.Std.to_type(float32).cpu();
        }
        else
        {
            var indices = randint(0, CachedCount, [batchSize], dtype: int64, generator: streams.DataOrder);
            mean = _means!.index_select(0, indices);
            std = _stds!.index_select(0, indices);
        }
        // Noise is drawn on the CPU and moved: the same seed gives the same run on any device.
        var eps = randn(mean.shape, dtype: float32, generator: streams.LatentSample);
        return mean.add(std.mul(eps), One).mul(Kept(_vae.ScalingFactor)).to(device).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _means?.Dispose();
        _stds?.Dispose();
    }
}
