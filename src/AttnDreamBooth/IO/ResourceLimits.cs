namespace AttnDreamBooth.IO;

/// <summary>
/// Bounds on what untrusted files may ask the library to allocate, checked before anything is allocated: model
/// configs (widths, layer counts, sizes, vocabulary, timesteps and the parameter count estimated from them) and
/// safetensors tensors and tokenizer files. The defaults admit every real SD 1.x/2.x and SDXL-class model with a wide margin; a value
/// above a limit is refused with a <see cref="ModelConfigException"/> (configs) or a
/// <see cref="SafetensorsFormatException"/> (tensors) naming the file, the key, the value and this limit.
/// See docs/security.md for every limit, its default and how to raise it.
/// </summary>
/// <remarks>Process-wide: set <see cref="Current"/> once at start-up (e.g.
/// <c>ResourceLimits.Current = ResourceLimits.Default with { MaxParameters = 20_000_000_000 }</c>).
/// Concept-image limits live on <c>ConceptImageOptions</c> (<c>MaxPixels</c>, <c>MaxFileBytes</c>).</remarks>
internal sealed record ResourceLimits
{
    private static ResourceLimits _current = new();

    /// <summary>The documented defaults.</summary>
    public static ResourceLimits Default { get; } = new();

    /// <summary>The limits in force (default: <see cref="Default"/>).</summary>
    public static ResourceLimits Current
    {
        get => Volatile.Read(ref _current);
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate();
            Volatile.Write(ref _current, value);
        }
    }

    /// <summary>Largest width of any layer: channels, hidden sizes, cross-attention and time-embedding widths, latent
    /// channels (default 16,384; SDXL's largest is 5,120).</summary>
    public int MaxChannels { get; init; } = 16_384;

    /// <summary>Most resolution levels of a U-Net or VAE (<c>block_out_channels</c> entries; default 8, SD uses 4).</summary>
    public int MaxBlocks { get; init; } = 8;

    /// <summary>Most ResNet layers per block (default 32, SD uses 2).</summary>
    public int MaxLayersPerBlock { get; init; } = 32;

    /// <summary>Most transformer layers per attention block (default 64, SDXL uses 10).</summary>
    public int MaxTransformerLayersPerBlock { get; init; } = 64;

    /// <summary>Most text-encoder layers (default 128, OpenCLIP bigG uses 32).</summary>
    public int MaxTextLayers { get; init; } = 128;

    /// <summary>Most attention heads of one layer (default 1,024).</summary>
    public int MaxAttentionHeads { get; init; } = 1_024;

    /// <summary>Largest <c>sample_size</c> of a U-Net (latent pixels) or VAE (image pixels) (default 16,384; SDXL: 128 / 1,024).</summary>
    public int MaxSampleSize { get; init; } = 16_384;

    /// <summary>Largest convolution kernel (default 15; SD uses 3).</summary>
    public int MaxKernelSize { get; init; } = 15;

    /// <summary>Largest vocabulary of a text encoder (default 1,000,000; CLIP has 49,408).</summary>
    public int MaxVocabSize { get; init; } = 1_000_000;

    /// <summary>Most position embeddings of a text encoder (default 16,384; CLIP has 77).</summary>
    public int MaxPositionEmbeddings { get; init; } = 16_384;

    /// <summary>Most training timesteps of a scheduler (default 100,000; SD uses 1,000).</summary>
    public int MaxTrainTimesteps { get; init; } = 100_000;

    /// <summary>Most parameters of one network, estimated from its config before it is built (default 8·10⁹; the
    /// SDXL U-Net has 2.6·10⁹). Each parameter costs 4 bytes in float32.</summary>
    public long MaxParameters { get; init; } = 8_000_000_000;

    /// <summary>Largest single tensor read from a safetensors file, in bytes (default 16 GiB; the largest tensor of
    /// SD/SDXL checkpoints is well under 1 GiB). A tensor extending past the end of its file is refused regardless.</summary>
    public long MaxTensorBytes { get; init; } = 16L << 30;

    /// <summary>Largest tokenizer file (<c>vocab.json</c>, <c>merges.txt</c>), in bytes, checked before it is read (default
    /// 64 MiB, room for a vocabulary of <see cref="MaxVocabSize"/> entries; CLIP's are 1 MB and 0.5 MB). The tokenizer's JSON
    /// files (<c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>, <c>added_tokens.json</c>) are configs (16 MiB).</summary>
    public long MaxTokenizerFileBytes { get; init; } = 64L << 20;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a limit below 1.</summary>
    public void Validate()
    {
        foreach (var (name, value) in new (string, long)[]
                 {
                     (nameof(MaxChannels), MaxChannels), (nameof(MaxBlocks), MaxBlocks), (nameof(MaxLayersPerBlock), MaxLayersPerBlock),
                     (nameof(MaxTransformerLayersPerBlock), MaxTransformerLayersPerBlock), (nameof(MaxTextLayers), MaxTextLayers),
                     (nameof(MaxAttentionHeads), MaxAttentionHeads), (nameof(MaxSampleSize), MaxSampleSize), (nameof(MaxKernelSize), MaxKernelSize),
                     (nameof(MaxVocabSize), MaxVocabSize), (nameof(MaxPositionEmbeddings), MaxPositionEmbeddings),
                     (nameof(MaxTrainTimesteps), MaxTrainTimesteps), (nameof(MaxParameters), MaxParameters), (nameof(MaxTensorBytes), MaxTensorBytes),
                     (nameof(MaxTokenizerFileBytes), MaxTokenizerFileBytes),
                 })
        {
            if (value < 1) throw new ArgumentOutOfRangeException(name, value, "must be ≥ 1");
        }
    }

    /// <summary>The message tail that says which limit refused a value and how to raise it.</summary>
    internal static string Exceeds(string limit, long max) =>
        $"exceeds the limit of {max:N0} (ResourceLimits.{limit}; raise it with ResourceLimits.Current = ResourceLimits.Default with {{ {limit} = … }}, see docs/security.md)";

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
}
