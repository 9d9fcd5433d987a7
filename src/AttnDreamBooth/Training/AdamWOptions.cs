namespace AttnDreamBooth.Training;

/// <summary>
/// AdamW hyper-parameters. The defaults are the official AttnDreamBooth ones: betas (0.9, 0.999), weight decay 1e-2
/// (note that TorchSharp's own AdamW default is 0), epsilon 1e-8. The learning rate is not part of them: the training
/// stage that uses the optimizer sets it (constant, no warm-up, no decay, as in the official script).
/// </summary>
public sealed record AdamWOptions
{
    /// <summary>The official settings.</summary>
    public static AdamWOptions Default { get; } = new();

    /// <summary>Exponential decay of the first moment, in [0, 1). Default 0.9.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Exponential decay of the second moment, in [0, 1). Default 0.999.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Decoupled weight decay, ≥ 0. Default 1e-2.</summary>
    public double WeightDecay { get; init; } = 1e-2;

    /// <summary>Added to the denominator for numerical stability, &gt; 0. Default 1e-8.</summary>
    public double Epsilon { get; init; } = 1e-8;
}
