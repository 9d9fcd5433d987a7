using System.Text.Json.Serialization;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The two weights of the cross-attention map regularization: <see cref="Mean"/> pulls the mean of the [V] token's
/// attention map towards the category token's, <see cref="Variance"/> does the same for the variance.
/// </summary>
/// <param name="Mean">w_mean, finite and ≥ 0.</param>
/// <param name="Variance">w_var, finite and ≥ 0.</param>
public sealed record AttentionRegularizationWeights(double Mean, double Variance)
{
    /// <summary>The official stage-1 weights (0.1, 0): only the means are aligned while the embedding is learned.</summary>
    public static AttentionRegularizationWeights EmbeddingStage { get; } = new(0.1, 0.0);

    /// <summary>The official stage-2 and stage-3 weights (2, 5).</summary>
    public static AttentionRegularizationWeights FineTuningStage { get; } = new(2.0, 5.0);

    /// <summary>No regularization (0, 0).</summary>
    public static AttentionRegularizationWeights None { get; } = new(0.0, 0.0);

    /// <summary>Whether both weights are zero, so the term can be skipped altogether.</summary>
    [JsonIgnore]
    public bool IsZero => Mean == 0.0 && Variance == 0.0;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> (naming <paramref name="argumentName"/>) unless both
    /// weights are finite and non-negative.</summary>
    public void Validate(string argumentName = "weights")
    {
        if (!double.IsFinite(Mean) || Mean < 0)
            throw new ArgumentOutOfRangeException(argumentName, Mean, "The mean weight of the attention regularization must be a finite number ≥ 0.");
        if (!double.IsFinite(Variance) || Variance < 0)
            throw new ArgumentOutOfRangeException(argumentName, Variance, "The variance weight of the attention regularization must be a finite number ≥ 0.");
    }

    /// <inheritdoc />
    public override string ToString() => $"(w_mean {Mean:g}, w_var {Variance:g})";
}
