using AttnDreamBooth.IO;

namespace AttnDreamBooth.Text;

/// <summary>Limits and checks applied when a learned-embeddings file is read (<see cref="LearnedEmbeddings.Read(string, LearnedEmbeddingsReadOptions)"/>).</summary>
internal sealed record LearnedEmbeddingsReadOptions
{
    /// <summary>The limits in force (<see cref="ResourceLimits.MaxEmbeddingRows"/>), every value checked to be finite.</summary>
    public static LearnedEmbeddingsReadOptions Default => new();

    /// <summary>The most rows (summed over every entry of the file) that are read; a file declaring more is refused
    /// from its header, before any tensor is allocated. Default: <see cref="ResourceLimits.MaxEmbeddingRows"/> of the
    /// limits in force when the options are made.</summary>
    public int MaxRows { get; init; } = ResourceLimits.Current.MaxEmbeddingRows;

    /// <summary>Refuse a file holding NaN or infinite values (default true). Turn off only for trusted files.</summary>
    public bool CheckFinite { get; init; } = true;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="MaxRows"/> is not positive.</exception>
    public void Validate()
    {
        if (MaxRows < 1) throw new ArgumentOutOfRangeException(nameof(MaxRows), MaxRows, "must be at least 1");
    }
}
