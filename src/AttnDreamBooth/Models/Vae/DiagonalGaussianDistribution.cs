using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The VAE posterior q(z | x): a Gaussian with diagonal covariance whose mean and log-variance are the two
/// channel halves of the moments [B, 2 * latent_channels, h, w] (<c>quant_conv</c>'s output). The log-variance
/// is clamped to [-30, 20] as the reference does. Latents are unscaled: multiply by
/// <see cref="AutoencoderKLConfig.ScalingFactor"/> before feeding them to the U-Net.
/// </summary>
public sealed class DiagonalGaussianDistribution : IDisposable
{
    /// <summary>Wraps <paramref name="parameters"/> (the moments; not copied, not disposed by the caller while
    /// this object is in use).</summary>
    /// <exception cref="ArgumentException">When the tensor has no channel axis or an odd number of channels.</exception>
    public DiagonalGaussianDistribution(Tensor parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.dim() < 2 || parameters.shape[1] % 2 != 0 || parameters.shape[1] == 0)
            throw new ArgumentException($"The moments must be [B, 2 * C, ...] with an even, non-zero channel count; got [{string.Join(", ", parameters.shape)}].", nameof(parameters));
        Parameters = parameters;
        var halves = parameters.chunk(2, dim: 1);
        Mean = halves[0];
        LogVar = halves[1].clamp(Kept(VaeConstants.LogVarMin), Kept(VaeConstants.LogVarMax));
        halves[1].Dispose();
        Std = LogVar.mul(Kept(0.5)).exp();
        Var = LogVar.exp();
    }

    /// <summary>The moments [B, 2 * C, h, w] this distribution was built from.</summary>
    public Tensor Parameters { get; }

    /// <summary>The mean [B, C, h, w] (a view of the first channel half of <see cref="Parameters"/>).</summary>
    public Tensor Mean { get; }

    /// <summary>The log-variance [B, C, h, w], clamped to [-30, 20].</summary>
    public Tensor LogVar { get; }

    /// <summary>The standard deviation exp(0.5 * LogVar).</summary>
    public Tensor Std { get; }

    /// <summary>The variance exp(LogVar).</summary>
    public Tensor Var { get; }

    /// <summary>
    /// Draws z = Mean + Std * n with n ~ N(0, 1) of Mean's shape and dtype. With a generator the noise is drawn
    /// on the generator's device (as diffusers' <c>randn_tensor</c> does) and moved to Mean's device, so a CPU
    /// generator with a given seed gives the same latents on every device.
    /// </summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var noiseDevice = generator?.device ?? Mean.device;
        var noise = randn(Mean.shape, dtype: Mean.dtype, device: noiseDevice, generator: generator).to(Mean.device);
        return SampleWithNoise(noise).MoveToOuterDisposeScope();
    }

    /// <summary>Mean + Std * <paramref name="noise"/> for given standard-normal noise of Mean's shape (e.g. stored
    /// noise, for reproducing a reference draw).</summary>
    public Tensor SampleWithNoise(Tensor noise)
    {
        ArgumentNullException.ThrowIfNull(noise);
        if (!noise.shape.SequenceEqual(Mean.shape))
            throw new ArgumentException($"The noise has shape [{string.Join(", ", noise.shape)}], expected [{string.Join(", ", Mean.shape)}].", nameof(noise));
        return Mean.addcmul(Std, noise, Kept(1.0));
    }

    /// <summary>The mode of the distribution, i.e. the mean (a new handle on the same storage).</summary>
    public Tensor Mode() => Mean.alias();

    /// <summary>Releases the tensors this distribution holds, including <see cref="Parameters"/>.</summary>
    public void Dispose()
    {
        Var.Dispose();
        Std.Dispose();
        LogVar.Dispose();
        Mean.Dispose();
        Parameters.Dispose();
    }
}
