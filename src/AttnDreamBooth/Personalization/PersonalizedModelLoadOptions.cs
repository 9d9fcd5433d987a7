using AttnDreamBooth.Text;

namespace AttnDreamBooth.Personalization;

/// <summary>Checks applied by <see cref="PersonalizedModel.LoadAsync(string, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>.</summary>
public sealed record PersonalizedModelLoadOptions
{
    /// <summary>The defaults: every weight checked to be finite, the default embedding limits.</summary>
    public static PersonalizedModelLoadOptions Default { get; } = new();

    /// <summary>Refuse a concept whose U-Net weights or embedding hold NaN or infinity (default true). Each tensor is
    /// read once more for the check; turn it off only for files you trust.</summary>
    public bool CheckFiniteWeights { get; init; } = true;

    /// <summary>The most embedding rows the concept's embedding file may hold (default <see cref="LearnedEmbeddingsReadOptions.DefaultMaxRows"/>).</summary>
    public int MaxEmbeddingRows { get; init; } = LearnedEmbeddingsReadOptions.DefaultMaxRows;
}
