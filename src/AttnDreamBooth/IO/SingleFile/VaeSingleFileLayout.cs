namespace AttnDreamBooth.IO.SingleFile;

/// <summary>The block structure of an <c>AutoencoderKL</c> that fixes its original key numbering. Read from the
/// diffusers <c>vae/config.json</c>.</summary>
/// <param name="Levels">Resolution levels (entries of <c>block_out_channels</c>).</param>
/// <param name="LayersPerBlock">Resnets per encoder level (decoder levels have one more).</param>
/// <param name="MidHasAttention">Whether the mid blocks hold the single-head attention (<c>mid_block_add_attention</c>).</param>
internal sealed record VaeSingleFileLayout(int Levels, int LayersPerBlock, bool MidHasAttention)
{
    /// <summary>Reads the layout from a diffusers VAE <c>config.json</c>.</summary>
    public static VaeSingleFileLayout Load(string configPath) => FromReader(ConfigReader.Load(configPath));

    /// <summary>Reads the layout from a parsed VAE config (diffusers defaults for missing keys).</summary>
    public static VaeSingleFileLayout FromReader(ConfigReader config)
    {
        int[] channels = config.GetIntArray("block_out_channels", [64]);
        config.Require(channels.Length >= 1, "block_out_channels", "must have at least one entry");
        string[] down = config.GetStringArray("down_block_types", Enumerable.Repeat("DownEncoderBlock2D", channels.Length).ToArray());
        string[] up = config.GetStringArray("up_block_types", Enumerable.Repeat("UpDecoderBlock2D", channels.Length).ToArray());
        config.Require(down.Length == channels.Length && down.All(t => t == "DownEncoderBlock2D"), "down_block_types",
            $"expected {channels.Length} x DownEncoderBlock2D (one per block_out_channels entry)");
        config.Require(up.Length == channels.Length && up.All(t => t == "UpDecoderBlock2D"), "up_block_types",
            $"expected {channels.Length} x UpDecoderBlock2D (one per block_out_channels entry)");
        int layers = config.GetInt("layers_per_block", 1);
        config.Require(layers >= 1, "layers_per_block", "must be at least 1");
        return new VaeSingleFileLayout(channels.Length, layers, config.GetBool("mid_block_add_attention", true));
    }
}
