using System.Runtime.CompilerServices;

namespace AttnDreamBooth.IO;

/// <summary>
/// Bounds on what untrusted files may ask the library to allocate or read, each checked before the allocation or read
/// it guards: model configs (widths, layer counts, sizes, vocabulary, timesteps and the parameter count estimated from
/// them), safetensors tensors and headers, config and tokenizer files, embedding files and images. The defaults admit
/// every real SD 1.x/2.x and SDXL-class model with a wide margin. A value above a limit is refused with a typed
/// exception naming the file, the key, the value and the limit. See docs/security.md for every limit, its default and
/// what it protects.
/// </summary>
/// <remarks>
/// Raise a limit with a copy of <see cref="Default"/> passed to the call that reads the files, e.g.
/// <c>PersonalizationPipeline.FromPretrained(folder).WithResourceLimits(ResourceLimits.Default with { MaxImagePixels = 200_000_000 })</c>;
/// the limits then apply to everything that pipeline reads (the model, concept photos, checkpoints, saved and imported
/// concepts, class images). Every property must be positive: an init below 1 throws
/// <see cref="ArgumentOutOfRangeException"/> naming it. Models built in code from a config
/// (<c>new UNet2DConditionModel(config)</c>) are checked against the limits of the library call they are built in,
/// otherwise against <see cref="Default"/>.
/// </remarks>
public sealed record ResourceLimits
{
    // The limits of the library call in progress; the entry points that take a ResourceLimits set it for the call (and
    // the work it starts: training and generation threads inherit it), so checks deep inside config parsing see them
    // without every loader passing them along. Nothing process-wide: concurrent calls with other limits do not interfere.
    private static readonly AsyncLocal<ResourceLimits?> InForce = new();

    /// <summary>The documented defaults.</summary>
    public static ResourceLimits Default { get; } = new();

    /// <summary>Largest width of any layer: channels, hidden sizes, cross-attention and time-embedding widths, latent
    /// channels (default 16,384; SDXL's largest is 2,048). Feed-forward widths may be 4× this.</summary>
    public int MaxChannels { get; init => field = Positive(value); } = 16_384;

    /// <summary>Most resolution levels of a U-Net or VAE (<c>block_out_channels</c> entries; default 8, SD uses 4).</summary>
    public int MaxBlocks { get; init => field = Positive(value); } = 8;

    /// <summary>Most ResNet layers per block (default 32, SD uses 2).</summary>
    public int MaxLayersPerBlock { get; init => field = Positive(value); } = 32;

    /// <summary>Most transformer layers per attention block (default 64, SDXL uses 10).</summary>
    public int MaxTransformerLayersPerBlock { get; init => field = Positive(value); } = 64;

    /// <summary>Most text-encoder (and CLIP vision) layers (default 128, OpenCLIP bigG uses 32).</summary>
    public int MaxTextLayers { get; init => field = Positive(value); } = 128;

    /// <summary>Most attention heads of one layer (default 1,024).</summary>
    public int MaxAttentionHeads { get; init => field = Positive(value); } = 1_024;

    /// <summary>Largest <c>sample_size</c> of a U-Net (latent pixels) or VAE (image pixels), CLIP image size and
    /// preprocessor sizes (default 16,384; SDXL: 128 / 1,024).</summary>
    public int MaxSampleSize { get; init => field = Positive(value); } = 16_384;

    /// <summary>Largest convolution kernel (default 15; SD uses 3).</summary>
    public int MaxKernelSize { get; init => field = Positive(value); } = 15;

    /// <summary>Largest vocabulary of a text encoder or tokenizer (default 1,000,000; CLIP has 49,408).</summary>
    public int MaxVocabSize { get; init => field = Positive(value); } = 1_000_000;

    /// <summary>Most position embeddings of a text encoder or CLIP vision tower (default 16,384; CLIP has 77 / 257).</summary>
    public int MaxPositionEmbeddings { get; init => field = Positive(value); } = 16_384;

    /// <summary>Most training timesteps of a scheduler (default 100,000; SD uses 1,000).</summary>
    public int MaxTrainTimesteps { get; init => field = Positive(value); } = 100_000;

    /// <summary>Most parameters of one network, estimated from its config before it is built (default 8·10⁹; the
    /// SDXL U-Net has 2.6·10⁹). Each parameter costs 4 bytes in float32.</summary>
    public long MaxParameters { get; init => field = Positive(value); } = 8_000_000_000;

    /// <summary>Largest single tensor read from a safetensors file, in bytes (default 16 GiB; the largest tensor of
    /// SD/SDXL checkpoints is well under 1 GiB). A tensor extending past the end of its file is refused regardless.</summary>
    public long MaxTensorBytes { get; init => field = Positive(value); } = 16L << 30;

    /// <summary>Largest JSON header of a safetensors file, in bytes (default 100 MiB, as the reference implementation;
    /// SD checkpoints have about 100 KB).</summary>
    public long MaxSafetensorsHeaderBytes { get; init => field = Positive(value); } = 100L << 20;

    /// <summary>Largest JSON configuration file (<c>config.json</c>, <c>scheduler_config.json</c>,
    /// <c>model_index.json</c>, the tokenizer's JSON files), in bytes, checked before it is read (default 16 MiB; real
    /// ones have a few KB).</summary>
    public long MaxConfigFileBytes { get; init => field = Positive(value); } = 16L << 20;

    /// <summary>Largest tokenizer vocabulary or merges file (<c>vocab.json</c>, <c>merges.txt</c>), in bytes, checked on
    /// the opened file before it is read (default 64 MiB, room for <see cref="MaxVocabSize"/> entries; CLIP's are 1 MB
    /// and 0.5 MB).</summary>
    public long MaxTokenizerFileBytes { get; init => field = Positive(value); } = 64L << 20;

    /// <summary>Most embedding rows of a learned-embeddings file, summed over its entries and read from its header before
    /// any tensor is allocated (default 1,024; a prompt holds 75 tokens, so real files have a few).</summary>
    public int MaxEmbeddingRows { get; init => field = Positive(value); } = 1_024;

    /// <summary>Most pixels (width × height) an image may declare in its header, checked before any pixel is decoded
    /// (default 89,478,485 ≈ 9,459², PIL's decompression-bomb threshold). Applies to concept photos, class images and
    /// images loaded for evaluation.</summary>
    public long MaxImagePixels { get; init => field = Positive(value); } = 89_478_485;

    /// <summary>Largest image file, in bytes, checked before it is read (default 256 MiB).</summary>
    public long MaxImageFileBytes { get; init => field = Positive(value); } = 256L << 20;

    /// <summary>The limits of the library call in progress (<see cref="Default"/> outside any call given limits).</summary>
    internal static ResourceLimits Current => InForce.Value ?? Default;

    /// <summary>Makes <paramref name="limits"/> the <see cref="Current"/> ones until the returned scope is disposed
    /// (null keeps those in force).</summary>
    internal static Scope Use(ResourceLimits? limits)
    {
        if (limits is null) return default;
        var previous = InForce.Value;
        InForce.Value = limits;
        return new Scope(previous, restore: true);
    }

    /// <summary>Restores the limits that were in force before <see cref="Use"/>.</summary>
    internal readonly struct Scope : IDisposable
    {
        private readonly ResourceLimits? _previous;
        private readonly bool _restore;

        internal Scope(ResourceLimits? previous, bool restore)
        {
            _previous = previous;
            _restore = restore;
        }

        public void Dispose()
        {
            if (_restore) InForce.Value = _previous;
        }
    }

    /// <summary>The message tail that says which limit refused a value and how to raise it.</summary>
    internal static string Exceeds(string limit, long max) =>
        $"exceeds the limit of {max:N0} (ResourceLimits.{limit}; to raise it, pass ResourceLimits.Default with {{ {limit} = … }} to the loading call, e.g. WithResourceLimits; see docs/security.md)";

    internal void RequireAtMost(string source, string key, long value, long max, string limit)
    {
        if (value > max) throw new ModelConfigException(source, key, $"{value:N0} {Exceeds(limit, max)}");
    }

    internal void RequireAllAtMost(string source, string key, IEnumerable<int> values, long max, string limit)
    {
        foreach (int v in values) RequireAtMost(source, key, v, max, limit);
    }

    internal void RequireParameters(string source, string model, double estimate)
    {
        if (estimate > MaxParameters)
            throw new ModelConfigException(source, null,
                $"the {model} this config describes has about {estimate:G3} parameters ({estimate * 4 / (1L << 30):N1} GiB in float32), which {Exceeds(nameof(MaxParameters), MaxParameters)}");
    }

    private static T Positive<T>(T value, [CallerMemberName] string property = "")
        where T : struct, System.Numerics.INumber<T>
    {
        if (value < T.One) throw new ArgumentOutOfRangeException(property, value, $"ResourceLimits.{property} must be at least 1.");
        return value;
    }
}
