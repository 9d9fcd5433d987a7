using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.UNet;

/// <summary>
/// Checks a U-Net config against <see cref="ResourceLimits.Current"/> before a module is built, including the parameter
/// count estimated from the config. Runs first in the config's validation, so an absurd value (or a zero divisor such
/// as <c>norm_num_groups: 0</c>) is a <see cref="ModelConfigException"/>, never an allocation or a native crash.
/// </summary>
internal static class UNetConfigLimits
{
    public static void Check(UNetConfig c, string source)
    {
        var l = ResourceLimits.Current;
        l.RequireAtMost(source, "block_out_channels", c.BlockOutChannels.Count, l.MaxBlocks, nameof(l.MaxBlocks));
        l.RequireAllAtMost(source, "block_out_channels", c.BlockOutChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAllAtMost(source, "layers_per_block", c.LayersPerBlock, l.MaxLayersPerBlock, nameof(l.MaxLayersPerBlock));
        l.RequireAllAtMost(source, "transformer_layers_per_block", c.TransformerLayersPerBlock, l.MaxTransformerLayersPerBlock, nameof(l.MaxTransformerLayersPerBlock));
        l.RequireAllAtMost(source, "cross_attention_dim", c.CrossAttentionDim, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAllAtMost(source, "attention_head_dim", c.AttentionHeadDim, l.MaxAttentionHeads, nameof(l.MaxAttentionHeads));
        l.RequireAtMost(source, "in_channels", c.InChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "out_channels", c.OutChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "time_embedding_dim", c.TimeEmbeddingDim ?? 0, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "sample_size", c.SampleSize ?? 0, l.MaxSampleSize, nameof(l.MaxSampleSize));
        l.RequireAtMost(source, "conv_in_kernel", c.ConvInKernel, l.MaxKernelSize, nameof(l.MaxKernelSize));
        l.RequireAtMost(source, "conv_out_kernel", c.ConvOutKernel, l.MaxKernelSize, nameof(l.MaxKernelSize));
        if (c.NormNumGroups <= 0) throw new ModelConfigException(source, "norm_num_groups", $"is {c.NormNumGroups}; it must be positive");
        if (c.AttentionHeadDim.Any(h => h <= 0)) throw new ModelConfigException(source, "attention_head_dim", "needs one positive number of heads per block");
    }

    /// <summary>The parameter ceiling; call once the config's lists are known to be consistent.</summary>
    public static void CheckParameters(UNetConfig c, string source) =>
        ResourceLimits.Current.RequireParameters(source, "U-Net", Estimate(c));

    /// <summary>Weights of convolutions, attention and feed-forward layers, from the block structure (within ~10% of the
    /// exact count for SD 1.x/2.x; biases and norms are negligible).</summary>
    internal static double Estimate(UNetConfig c)
    {
        double temb = c.TimeEmbedDim;
        double first = c.BlockOutChannels[0];
        // conv_in / conv_out: negligible for SD, but in_channels and a 15-wide kernel alone can ask for billions.
        double total = first * temb + temb * temb
            + first * ((double)c.InChannels * c.ConvInKernel * c.ConvInKernel + (double)c.OutChannels * c.ConvOutKernel * c.ConvOutKernel);
        double Resnet(double cin, double cout) => 9 * cin * cout + 9 * cout * cout + temb * cout + (cin != cout ? cin * cout : 0);
        double Transformer(double ch, double cross, int layers) => 2 * ch * ch + layers * (4 * ch * ch + 2 * ch * ch + 2 * ch * cross + 12 * ch * ch);
        int n = c.BlockOutChannels.Count;
        double prev = c.BlockOutChannels[0];
        for (int i = 0; i < n; i++)
        {
            double ch = c.BlockOutChannels[i];
            bool attention = c.DownBlockTypes[i].StartsWith("CrossAttn", StringComparison.Ordinal);
            for (int j = 0; j < c.LayersPerBlock[i]; j++)
            {
                total += Resnet(j == 0 ? prev : ch, ch);
                if (attention) total += Transformer(ch, c.CrossAttentionDim[i], c.TransformerLayersPerBlock[i]);
            }
            if (i < n - 1) total += 9 * ch * ch;
            prev = ch;
        }
        double last = c.BlockOutChannels[^1];
        total += 2 * Resnet(last, last) + Transformer(last, c.CrossAttentionDim[^1], c.TransformerLayersPerBlock[^1]);
        for (int i = 0; i < n; i++)
        {
            int down = n - 1 - i;
            double ch = c.BlockOutChannels[down];
            bool attention = c.UpBlockTypes[i].StartsWith("CrossAttn", StringComparison.Ordinal);
            for (int j = 0; j <= c.LayersPerBlock[down]; j++)
            {
                total += Resnet(2 * ch, ch);
                if (attention) total += Transformer(ch, c.CrossAttentionDim[down], c.TransformerLayersPerBlock[down]);
            }
            if (i < n - 1) total += 9 * ch * ch;
        }
        return total;
    }
}
