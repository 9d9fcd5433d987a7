using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Blocks;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The configuration of an <see cref="AutoencoderKL"/>: the keys of diffusers' <c>vae/config.json</c> with
/// diffusers' defaults. Unknown keys are ignored.
/// </summary>
public sealed record AutoencoderKLConfig
{
    /// <summary>The only down block type the KL autoencoder uses.</summary>
    public const string DownEncoderBlockType = "DownEncoderBlock2D";

    /// <summary>The only up block type the KL autoencoder uses.</summary>
    public const string UpDecoderBlockType = "UpDecoderBlock2D";

    /// <summary><c>in_channels</c>: image channels (3).</summary>
    public int InChannels { get; init; } = 3;

    /// <summary><c>out_channels</c>: decoded image channels (3).</summary>
    public int OutChannels { get; init; } = 3;

    /// <summary><c>down_block_types</c>: one entry per resolution level, all <c>DownEncoderBlock2D</c>.</summary>
    public IReadOnlyList<string> DownBlockTypes { get; init; } = [DownEncoderBlockType];

    /// <summary><c>up_block_types</c>: one entry per resolution level, all <c>UpDecoderBlock2D</c>.</summary>
    public IReadOnlyList<string> UpBlockTypes { get; init; } = [UpDecoderBlockType];

    /// <summary><c>block_out_channels</c>: channels per resolution level (SD: 128, 256, 512, 512).</summary>
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];

    /// <summary><c>layers_per_block</c>: resnets per encoder block (decoder blocks have one more).</summary>
    public int LayersPerBlock { get; init; } = 1;

    /// <summary><c>act_fn</c>: the nonlinearity (<c>silu</c>/<c>swish</c>, <c>gelu</c>, <c>relu</c>, <c>mish</c>).</summary>
    public string ActFn { get; init; } = "silu";

    /// <summary><c>latent_channels</c>: channels of the latent (4).</summary>
    public int LatentChannels { get; init; } = 4;

    /// <summary><c>norm_num_groups</c>: groups of every GroupNorm.</summary>
    public int NormNumGroups { get; init; } = 32;

    /// <summary><c>sample_size</c>: the training image size; also the default tile size of tiled decoding.</summary>
    public int SampleSize { get; init; } = 32;

    /// <summary><c>scaling_factor</c>: latents are multiplied by it after encoding and divided by it before
    /// decoding. <see cref="AutoencoderKL"/> itself never applies it.</summary>
    public double ScalingFactor { get; init; } = 0.18215;

    /// <summary><c>force_upcast</c>: whether the model should run in float32 even when the pipeline runs in
    /// half precision (informational here: this library runs the VAE in the dtype of its parameters).</summary>
    public bool ForceUpcast { get; init; } = true;

    /// <summary><c>mid_block_add_attention</c> (newer diffusers): whether the mid blocks have their attention layer.</summary>
    public bool MidBlockAddAttention { get; init; } = true;

    /// <summary>The spatial factor between images and latents, <c>2^(len(block_out_channels) - 1)</c> (8 for SD).</summary>
    public int DownsampleFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>Reads and validates a <c>config.json</c>, checking it against <paramref name="limits"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static AutoencoderKLConfig Load(string path, ResourceLimits? limits = null)
    {
        using var scope = ResourceLimits.Use(limits);
        return FromReader(ConfigReader.Load(path));
    }

    /// <summary>Reads and validates the values of an already-opened configuration.</summary>
    internal static AutoencoderKLConfig FromReader(ConfigReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var defaults = new AutoencoderKLConfig();
        var config = new AutoencoderKLConfig
        {
            InChannels = reader.GetInt("in_channels", defaults.InChannels),
            OutChannels = reader.GetInt("out_channels", defaults.OutChannels),
            DownBlockTypes = reader.GetStringArray("down_block_types", [.. defaults.DownBlockTypes]),
            UpBlockTypes = reader.GetStringArray("up_block_types", [.. defaults.UpBlockTypes]),
            BlockOutChannels = reader.GetIntArray("block_out_channels", [.. defaults.BlockOutChannels]),
            LayersPerBlock = reader.GetInt("layers_per_block", defaults.LayersPerBlock),
            ActFn = reader.GetString("act_fn", defaults.ActFn),
            LatentChannels = reader.GetInt("latent_channels", defaults.LatentChannels),
            NormNumGroups = reader.GetInt("norm_num_groups", defaults.NormNumGroups),
            SampleSize = ReadSampleSize(reader, defaults.SampleSize),
            ScalingFactor = reader.GetDouble("scaling_factor", defaults.ScalingFactor),
            ForceUpcast = reader.GetBool("force_upcast", defaults.ForceUpcast),
            MidBlockAddAttention = reader.GetBool("mid_block_add_attention", defaults.MidBlockAddAttention),
        };
        string? problem = config.FindProblem(out string key);
        if (problem is not null) throw new ModelConfigException(reader.FilePath, key, problem);
        Activations.Require(config.ActFn, ActivationNaming.Diffusers, reader.FilePath, "act_fn");
        AutoencoderKLConfigLimits.Check(config, reader.FilePath);
        return config;
    }

    /// <summary>Throws <see cref="ArgumentException"/> when the values cannot describe a KL autoencoder, or
    /// <see cref="ModelConfigException"/> for an unsupported <c>act_fn</c> or a size beyond the resource limits (used by
    /// the <see cref="AutoencoderKL"/> constructor for configs built in code).</summary>
    public void Validate()
    {
        string? problem = FindProblem(out string key);
        if (problem is not null) throw new ArgumentException($"Invalid AutoencoderKL configuration: '{key}' {problem}.", nameof(AutoencoderKLConfig));
        Activations.Require(ActFn, ActivationNaming.Diffusers, "<AutoencoderKLConfig>", "act_fn");
        AutoencoderKLConfigLimits.Check(this, "<AutoencoderKLConfig>");
    }

    private string? FindProblem(out string key)
    {
        (key, string? problem) = this switch
        {
            { InChannels: <= 0 } => ("in_channels", "must be positive"),
            { OutChannels: <= 0 } => ("out_channels", "must be positive"),
            { LatentChannels: <= 0 } => ("latent_channels", "must be positive"),
            { LayersPerBlock: <= 0 } => ("layers_per_block", "must be positive"),
            { NormNumGroups: <= 0 } => ("norm_num_groups", "must be positive"),
            { SampleSize: <= 0 } => ("sample_size", "must be positive"),
            _ when BlockOutChannels.Count == 0 => ("block_out_channels", "must have at least one entry"),
            _ when BlockOutChannels.Count > 16 => ("block_out_channels", $"has {BlockOutChannels.Count} entries; at most 16 resolution levels are supported"),
            _ when BlockOutChannels.Any(c => c <= 0 || c % NormNumGroups != 0) =>
                ("block_out_channels", $"[{string.Join(", ", BlockOutChannels)}] must be positive multiples of norm_num_groups ({NormNumGroups})"),
            _ when DownBlockTypes.Count != BlockOutChannels.Count =>
                ("down_block_types", $"has {DownBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}"),
            _ when UpBlockTypes.Count != BlockOutChannels.Count =>
                ("up_block_types", $"has {UpBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}"),
            _ when DownBlockTypes.FirstOrDefault(t => t != DownEncoderBlockType) is { } bad =>
                ("down_block_types", $"contains '{bad}'; only '{DownEncoderBlockType}' is supported"),
            _ when UpBlockTypes.FirstOrDefault(t => t != UpDecoderBlockType) is { } bad =>
                ("up_block_types", $"contains '{bad}'; only '{UpDecoderBlockType}' is supported"),
            _ when !(ScalingFactor > 0 && double.IsFinite(ScalingFactor)) => ("scaling_factor", $"is {ScalingFactor}; it must be a positive finite number"),
            _ => ("", null),
        };
        return problem;
    }

    private static int ReadSampleSize(ConfigReader reader, int defaultValue)
    {
        // Some configs store [height, width]; diffusers then uses the first entry for its tile size.
        if (reader.Raw("sample_size") is { ValueKind: System.Text.Json.JsonValueKind.Array })
        {
            int[] sizes = reader.GetIntArray("sample_size");
            reader.Require(sizes.Length > 0, "sample_size", "is an empty list");
            return sizes[0];
        }
        return reader.GetInt("sample_size", defaultValue);
    }
}
