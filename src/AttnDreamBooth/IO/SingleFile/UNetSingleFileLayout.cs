namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// The block structure of a <c>UNet2DConditionModel</c> that fixes its original (LDM) key numbering: resolution levels,
/// resnets per level and which levels carry cross-attention. Read from the diffusers <c>unet/config.json</c>.
/// </summary>
/// <param name="LayersPerBlock">Resnets per down level (up levels have one more).</param>
/// <param name="DownHasAttention">Per down level (diffusers order): whether it is a <c>CrossAttnDownBlock2D</c>.</param>
/// <param name="UpHasAttention">Per up level (diffusers order, deepest first): whether it is a <c>CrossAttnUpBlock2D</c>.</param>
internal sealed record UNetSingleFileLayout(int LayersPerBlock, IReadOnlyList<bool> DownHasAttention, IReadOnlyList<bool> UpHasAttention)
{
    /// <summary>The number of resolution levels.</summary>
    public int Levels => DownHasAttention.Count;

    /// <summary>Reads the layout from a diffusers UNet <c>config.json</c>.</summary>
    public static UNetSingleFileLayout Load(string configPath) => FromReader(ConfigReader.Load(configPath));

    /// <summary>Reads the layout from a parsed UNet config (diffusers defaults for missing keys).</summary>
    /// <exception cref="ModelConfigException">The config describes a U-Net the SD 1.x/2.x single-file layout cannot hold.</exception>
    public static UNetSingleFileLayout FromReader(ConfigReader config)
    {
        string[] down = config.GetStringArray("down_block_types", ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]);
        string[] up = config.GetStringArray("up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]);
        int[] channels = config.GetIntArray("block_out_channels", [320, 640, 1280, 1280]);
        config.Require(down.Length == channels.Length, "down_block_types", $"has {down.Length} entries but block_out_channels has {channels.Length}");
        config.Require(up.Length == down.Length, "up_block_types", $"has {up.Length} entries but down_block_types has {down.Length}");
        config.Require(config.Raw("layers_per_block") is not { ValueKind: System.Text.Json.JsonValueKind.Array }, "layers_per_block",
            "per-level layer counts have no SD 1.x/2.x single-file layout");
        int layers = config.GetInt("layers_per_block", 2);
        config.Require(layers >= 1, "layers_per_block", "must be at least 1");
        string mid = config.GetString("mid_block_type", "UNetMidBlock2DCrossAttn");
        config.Require(mid == "UNetMidBlock2DCrossAttn", "mid_block_type", $"'{mid}' has no SD 1.x/2.x single-file layout (expected UNetMidBlock2DCrossAttn)");
        foreach (string key in new[] { "class_embed_type", "addition_embed_type", "encoder_hid_dim_type" })
            config.Require(!config.Has(key), key, "extra conditioning inputs (SDXL and others) have no SD 1.x/2.x single-file layout");
        return new UNetSingleFileLayout(
            layers,
            down.Select((t, i) => Classify(config, "down_block_types", t, "CrossAttnDownBlock2D", "DownBlock2D")).ToArray(),
            up.Select((t, i) => Classify(config, "up_block_types", t, "CrossAttnUpBlock2D", "UpBlock2D")).ToArray());
    }

    private static bool Classify(ConfigReader config, string key, string type, string withAttention, string without)
    {
        if (type == withAttention) return true;
        if (type == without) return false;
        throw new ModelConfigException(config.FilePath, key, $"block type '{type}' has no SD 1.x/2.x single-file layout (expected {withAttention} or {without})");
    }
}
