using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// Checks a VAE config against <see cref="ResourceLimits.Current"/> before a module is built, including the parameter
/// count estimated from the config. Runs first in the config's validation, so an absurd value (or a zero divisor such
/// as <c>norm_num_groups: 0</c>) is a <see cref="ModelConfigException"/>, never an allocation or a native crash.
/// </summary>
internal static class AutoencoderKLConfigLimits
{
    public static void Check(AutoencoderKLConfig c, string source)
    {
        var l = ResourceLimits.Current;
        l.RequireAtMost(source, "block_out_channels", c.BlockOutChannels.Count, l.MaxBlocks, nameof(l.MaxBlocks));
        l.RequireAllAtMost(source, "block_out_channels", c.BlockOutChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "layers_per_block", c.LayersPerBlock, l.MaxLayersPerBlock, nameof(l.MaxLayersPerBlock));
        l.RequireAtMost(source, "latent_channels", c.LatentChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "in_channels", c.InChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "out_channels", c.OutChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "sample_size", c.SampleSize, l.MaxSampleSize, nameof(l.MaxSampleSize));
        l.RequireParameters(source, "VAE", Estimate(c));
    }

    internal static double Estimate(AutoencoderKLConfig c)
    {
        double total = 0;
        double Resnet(double cin, double cout) => 9 * cin * cout + 9 * cout * cout + (cin != cout ? cin * cout : 0);
        double prev = c.BlockOutChannels[0];
        foreach (int width in c.BlockOutChannels)
        {
            // Encoder and decoder: layers_per_block (+1 in the decoder) ResNets and a resampling conv per level.
            total += c.LayersPerBlock * Resnet(prev, width) + (c.LayersPerBlock + 1) * Resnet(width, width) + 2 * 9.0 * width * width;
            prev = width;
        }
        double last = c.BlockOutChannels[^1];
        // conv_in / conv_out of the encoder and decoder, at their 3×3 kernels.
        total += 9.0 * c.BlockOutChannels[0] * c.InChannels + 9.0 * last * 2 * c.LatentChannels + 9.0 * last * c.LatentChannels + 9.0 * c.BlockOutChannels[0] * c.OutChannels;
        return total + 2 * (2 * Resnet(last, last) + 4 * last * last);
    }
}
