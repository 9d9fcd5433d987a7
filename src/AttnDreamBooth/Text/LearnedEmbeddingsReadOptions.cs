namespace AttnDreamBooth.Text;

/// <summary>Limits and checks applied when a learned-embeddings file is read (<see cref="LearnedEmbeddings.Read(string, LearnedEmbeddingsReadOptions)"/>).</summary>
internal sealed record LearnedEmbeddingsReadOptions
{
    /// <summary>The default: at most <see cref="DefaultMaxRows"/> rows, every value checked to be finite.</summary>
    public static LearnedEmbeddingsReadOptions Default { get; } = new();

    /// <summary>The default row limit. A prompt holds 75 tokens, so real textual-inversion files have a few rows
    /// (multi-vector ones up to 75); 1024 leaves ample room.</summary>
    public const int DefaultMaxRows = 1024;

    /// <summary>The most rows (summed over every entry of the file) that are read; a file declaring more is refused
    /// from its header, before any tensor is allocated.</summary>
    public int MaxRows { get; init; } = DefaultMaxRows;

    /// <summary>Refuse a file holding NaN or infinite values (default true). Turn off only for trusted files.</summary>
    public bool CheckFinite { get; init; } = true;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="MaxRows"/> is not positive.</exception>
    public void Validate()
    {
        if (MaxRows < 1) throw new ArgumentOutOfRangeException(nameof(MaxRows), MaxRows, "must be at least 1");
    }
}
