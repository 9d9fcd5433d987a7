using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Blocks;

namespace AttnDreamBooth.Models.UNet;

/// <summary>
/// The configuration of a <see cref="UNet2DConditionModel"/> (diffusers' <c>unet/config.json</c>). Property names are
/// the diffusers keys in PascalCase; defaults are diffusers' defaults. Per-block values (<c>layers_per_block</c>,
/// <c>attention_head_dim</c>, <c>cross_attention_dim</c>, <c>transformer_layers_per_block</c>) may be an int or a list
/// in the file and are always expanded to one entry per down block here.
/// <para>
/// Legacy quirk: <c>attention_head_dim</c> is the NUMBER OF HEADS per block (diffusers uses it so when
/// <c>num_attention_heads</c> is null, which every SD 1.x/2.x config has); the head size is channels / heads. See
/// <see cref="HeadsPerDownBlock"/>. Configurations that use features this implementation lacks (class or addition
/// embeddings, other block types, …) are rejected with a <see cref="ModelConfigException"/> naming the key.
/// </para>
/// </summary>
public sealed record UNetConfig
{
    /// <summary>Down block types supported.</summary>
    public static IReadOnlyList<string> SupportedDownBlockTypes { get; } = ["CrossAttnDownBlock2D", "DownBlock2D"];

    /// <summary>Up block types supported.</summary>
    public static IReadOnlyList<string> SupportedUpBlockTypes { get; } = ["CrossAttnUpBlock2D", "UpBlock2D"];

    /// <summary>Mid block types supported.</summary>
    public static IReadOnlyList<string> SupportedMidBlockTypes { get; } = ["UNetMidBlock2DCrossAttn"];

    /// <summary><c>sample_size</c>: the latent size the model was trained at (null when absent).</summary>
    public int? SampleSize { get; init; }

    /// <summary><c>in_channels</c> (4).</summary>
    public int InChannels { get; init; } = 4;

    /// <summary><c>out_channels</c> (4).</summary>
    public int OutChannels { get; init; } = 4;

    /// <summary><c>center_input_sample</c>: map the input with <c>2x - 1</c> first (false).</summary>
    public bool CenterInputSample { get; init; }

    /// <summary><c>flip_sin_to_cos</c>: the timestep embedding is [cos, sin] instead of [sin, cos] (true).</summary>
    public bool FlipSinToCos { get; init; } = true;

    /// <summary><c>freq_shift</c> (0): the frequencies are <c>exp(-ln(10000) i / (half - freq_shift))</c>.</summary>
    public double FreqShift { get; init; }

    /// <summary><c>down_block_types</c>.</summary>
    public IReadOnlyList<string> DownBlockTypes { get; init; } = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];

    /// <summary><c>mid_block_type</c>.</summary>
    public string MidBlockType { get; init; } = "UNetMidBlock2DCrossAttn";

    /// <summary><c>up_block_types</c>.</summary>
    public IReadOnlyList<string> UpBlockTypes { get; init; } = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"];

    /// <summary><c>block_out_channels</c>.</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [320, 640, 1280, 1280];

    /// <summary><c>layers_per_block</c>, per down block (up blocks have one more, in reversed order).</summary>
    public IReadOnlyList<int> LayersPerBlock { get; init; } = [2, 2, 2, 2];

    /// <summary><c>downsample_padding</c> (1).</summary>
    public int DownsamplePadding { get; init; } = 1;

    /// <summary><c>mid_block_scale_factor</c> (1): the mid block's resnet output divisor.</summary>
    public double MidBlockScaleFactor { get; init; } = 1.0;

    /// <summary><c>dropout</c> (0).</summary>
    public double Dropout { get; init; }

    /// <summary><c>act_fn</c>: the nonlinearity of the resnets, the timestep MLP and the output (one of diffusers' <c>get_activation</c> names this library implements: silu, swish, gelu, relu, mish).</summary>
    public string ActFn { get; init; } = "silu";

    /// <summary><c>norm_num_groups</c> (32): GroupNorm groups of the resnets, transformers and <c>conv_norm_out</c>.</summary>
    public int NormNumGroups { get; init; } = 32;

    /// <summary><c>norm_eps</c> (1e-5): epsilon of the resnet GroupNorms and <c>conv_norm_out</c>.</summary>
    public double NormEps { get; init; } = 1e-5;

    /// <summary><c>cross_attention_dim</c>, per down block (width of the text encoder states).</summary>
    public IReadOnlyList<int> CrossAttentionDim { get; init; } = [1280, 1280, 1280, 1280];

    /// <summary><c>transformer_layers_per_block</c>, per down block (1).</summary>
    public IReadOnlyList<int> TransformerLayersPerBlock { get; init; } = [1, 1, 1, 1];

    /// <summary><c>attention_head_dim</c> as written, per down block. Legacy meaning: the number of heads.</summary>
    public IReadOnlyList<int> AttentionHeadDim { get; init; } = [8, 8, 8, 8];

    /// <summary><c>use_linear_projection</c>: Linear (true) or 1x1 Conv2d (false) <c>proj_in</c>/<c>proj_out</c>.</summary>
    public bool UseLinearProjection { get; init; }

    /// <summary><c>upcast_attention</c>: attention in float32 for half-precision inputs (SD 2.x).</summary>
    public bool UpcastAttention { get; init; }

    /// <summary><c>conv_in_kernel</c> (3).</summary>
    public int ConvInKernel { get; init; } = 3;

    /// <summary><c>conv_out_kernel</c> (3).</summary>
    public int ConvOutKernel { get; init; } = 3;

    /// <summary><c>time_embedding_dim</c>: width of the time embedding (null = 4 x <c>block_out_channels[0]</c>).</summary>
    public int? TimeEmbeddingDim { get; init; }

    /// <summary>Heads of the attention layers in each down block (the legacy <c>attention_head_dim</c> values).</summary>
    public IReadOnlyList<int> HeadsPerDownBlock => AttentionHeadDim;

    /// <summary>Channels per head in each down block (<c>block_out_channels[i] / heads[i]</c>).</summary>
    public IReadOnlyList<int> HeadDimPerDownBlock => BlockOutChannels.Select((c, i) => c / HeadsPerDownBlock[i]).ToArray();

    /// <summary>Heads of up block i: <c>reversed(heads)[i]</c>.</summary>
    public IReadOnlyList<int> HeadsPerUpBlock => HeadsPerDownBlock.Reverse().ToArray();

    /// <summary>Heads of the mid block: the last entry.</summary>
    public int HeadsMidBlock => HeadsPerDownBlock[^1];

    /// <summary>Width of the time embedding.</summary>
    public int TimeEmbedDim => TimeEmbeddingDim ?? BlockOutChannels[0] * 4;

    /// <summary>Number of down (and up) blocks.</summary>
    public int BlockCount => BlockOutChannels.Count;

    /// <summary>Reads <paramref name="path"/> (a <c>unet/config.json</c>) and checks it against <paramref name="limits"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static UNetConfig Load(string path, ResourceLimits? limits = null)
    {
        using var scope = ResourceLimits.Use(limits);
        return FromReader(ConfigReader.Load(path));
    }

    /// <summary>Builds the config from parsed JSON; unknown keys are ignored, unsupported features rejected.</summary>
    internal static UNetConfig FromReader(ConfigReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var d = new UNetConfig();
        var blockOut = reader.GetIntArray("block_out_channels", [.. d.BlockOutChannels]);
        int n = blockOut.Length;
        reader.Require(n >= 1, "block_out_channels", "needs at least one entry");
        reader.Require(blockOut.All(c => c > 0), "block_out_channels", "channels must be positive");
        var down = reader.GetStringArray("down_block_types", [.. d.DownBlockTypes]);
        var up = reader.GetStringArray("up_block_types", [.. d.UpBlockTypes]);
        reader.Require(down.Length == n, "down_block_types", $"has {down.Length} entries, block_out_channels has {n}");
        reader.Require(up.Length == n, "up_block_types", $"has {up.Length} entries, block_out_channels has {n}");
        foreach (var t in down) reader.Require(SupportedDownBlockTypes.Contains(t), "down_block_types", $"'{t}' is not supported (supported: {string.Join(", ", SupportedDownBlockTypes)})");
        foreach (var t in up) reader.Require(SupportedUpBlockTypes.Contains(t), "up_block_types", $"'{t}' is not supported (supported: {string.Join(", ", SupportedUpBlockTypes)})");
        string mid = reader.GetString("mid_block_type", d.MidBlockType);
        reader.Require(SupportedMidBlockTypes.Contains(mid), "mid_block_type", $"'{mid}' is not supported (supported: {string.Join(", ", SupportedMidBlockTypes)})");

        RejectUnsupported(reader);
        reader.Require(!reader.Has("num_attention_heads"), "num_attention_heads",
            "is not supported: like diffusers, SD configs give the number of heads through the legacy 'attention_head_dim' key");

        var heads = reader.GetIntOrList("attention_head_dim", n, [8]);
        var config = new UNetConfig
        {
            SampleSize = reader.GetNullableInt("sample_size"),
            InChannels = reader.GetInt("in_channels", d.InChannels),
            OutChannels = reader.GetInt("out_channels", d.OutChannels),
            CenterInputSample = reader.GetBool("center_input_sample", d.CenterInputSample),
            FlipSinToCos = reader.GetBool("flip_sin_to_cos", d.FlipSinToCos),
            FreqShift = reader.GetDouble("freq_shift", d.FreqShift),
            DownBlockTypes = down,
            MidBlockType = mid,
            UpBlockTypes = up,
            BlockOutChannels = blockOut,
            LayersPerBlock = reader.GetIntOrList("layers_per_block", n, [2]),
            DownsamplePadding = reader.GetInt("downsample_padding", d.DownsamplePadding),
            MidBlockScaleFactor = reader.GetDouble("mid_block_scale_factor", d.MidBlockScaleFactor),
            Dropout = reader.GetDouble("dropout", d.Dropout),
            ActFn = reader.GetString("act_fn", d.ActFn),
            NormNumGroups = reader.GetInt("norm_num_groups", d.NormNumGroups),
            NormEps = reader.GetDouble("norm_eps", d.NormEps),
            CrossAttentionDim = reader.GetIntOrList("cross_attention_dim", n, [1280]),
            TransformerLayersPerBlock = reader.GetIntOrList("transformer_layers_per_block", n, [1]),
            AttentionHeadDim = heads,
            UseLinearProjection = reader.GetBool("use_linear_projection", d.UseLinearProjection),
            UpcastAttention = reader.GetBool("upcast_attention", d.UpcastAttention),
            ConvInKernel = reader.GetInt("conv_in_kernel", d.ConvInKernel),
            ConvOutKernel = reader.GetInt("conv_out_kernel", d.ConvOutKernel),
            TimeEmbeddingDim = reader.GetNullableInt("time_embedding_dim"),
        };
        config.Validate(reader.FilePath);
        return config;
    }

    /// <summary>Checks the values for consistency (heads divide channels, groups divide channels, …).</summary>
    /// <param name="source">File name used in the error message.</param>
    /// <exception cref="ModelConfigException">A value is invalid.</exception>
    public void Validate(string source = "<UNetConfig>")
    {
        void Require(bool ok, string key, string problem)
        {
            if (!ok) throw new ModelConfigException(source, key, problem);
        }
        UNetConfigLimits.Check(this, source);
        int n = BlockOutChannels.Count;
        Require(n >= 1 && BlockOutChannels.All(c => c > 0), "block_out_channels", "needs at least one positive entry");
        Require(DownBlockTypes.Count == n && UpBlockTypes.Count == n, "down_block_types", "one down and one up block per block_out_channels entry are needed");
        Require(LayersPerBlock.Count == n && LayersPerBlock.All(l => l >= 1), "layers_per_block", "needs one positive value per block");
        Require(CrossAttentionDim.Count == n && CrossAttentionDim.All(c => c > 0), "cross_attention_dim", "needs one positive value per block");
        Require(TransformerLayersPerBlock.Count == n && TransformerLayersPerBlock.All(c => c >= 1), "transformer_layers_per_block", "needs one positive value per block");
        Require(AttentionHeadDim.Count == n && AttentionHeadDim.All(h => h > 0), "attention_head_dim", "needs one positive number of heads per block");
        for (int i = 0; i < n; i++)
        {
            Require(BlockOutChannels[i] % AttentionHeadDim[i] == 0, "attention_head_dim",
                $"block {i}: {BlockOutChannels[i]} channels are not divisible by {AttentionHeadDim[i]} heads (the legacy key holds the number of heads)");
            Require(BlockOutChannels[i] % NormNumGroups == 0, "norm_num_groups", $"{BlockOutChannels[i]} channels of block {i} are not divisible by {NormNumGroups} groups");
        }
        Require(BlockOutChannels[^1] % HeadsMidBlock == 0, "attention_head_dim", "the mid block's channels are not divisible by its heads");
        Require(InChannels > 0 && OutChannels > 0, "in_channels", "channel counts must be positive");
        Require(NormNumGroups > 0, "norm_num_groups", "must be positive");
        Require(NormEps > 0, "norm_eps", "must be positive");
        Require(ConvInKernel % 2 == 1 && ConvInKernel > 0, "conv_in_kernel", "must be a positive odd number");
        Require(ConvOutKernel % 2 == 1 && ConvOutKernel > 0, "conv_out_kernel", "must be a positive odd number");
        Activations.Require(ActFn, ActivationNaming.Diffusers, source, "act_fn");
        Require(DownsamplePadding is 0 or 1, "downsample_padding", "must be 0 or 1");
        Require(Dropout is >= 0 and < 1, "dropout", "must be in [0, 1)");
        Require(TimeEmbeddingDim is null or > 0, "time_embedding_dim", "must be positive");
        Require(BlockOutChannels[0] % 2 == 0, "block_out_channels", "the first entry must be even (it is the sinusoidal timestep width)");
        UNetConfigLimits.CheckParameters(this, source);
    }

    private static void RejectUnsupported(ConfigReader reader)
    {
        foreach (var key in new[] { "class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type", "time_cond_proj_dim",
                     "num_class_embeds", "timestep_post_act", "time_embedding_act_fn", "cross_attention_norm", "reverse_transformer_layers_per_block",
                     "mid_block_only_cross_attention" })
        {
            reader.Require(!reader.Has(key), key, "is not supported (Stable Diffusion 1.x/2.x configs leave it null)");
        }
        reader.Require(!reader.GetBool("dual_cross_attention", false), "dual_cross_attention", "true is not supported");
        reader.Require(!reader.GetBool("resnet_skip_time_act", false), "resnet_skip_time_act", "true is not supported");
        reader.Require(reader.GetDouble("resnet_out_scale_factor", 1.0) == 1.0, "resnet_out_scale_factor", "only 1.0 is supported");
        reader.Require(reader.GetString("resnet_time_scale_shift", "default") == "default", "resnet_time_scale_shift", "only 'default' is supported");
        reader.Require(reader.GetString("time_embedding_type", "positional") == "positional", "time_embedding_type", "only 'positional' is supported");
        reader.Require(reader.GetString("attention_type", "default") == "default", "attention_type", "only 'default' is supported");
        if (reader.Raw("only_cross_attention") is { } oca)
        {
            bool anyTrue = oca.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.Array => oca.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.False),
                _ => true,
            };
            reader.Require(!anyTrue, "only_cross_attention", "only false is supported");
        }
    }
}
