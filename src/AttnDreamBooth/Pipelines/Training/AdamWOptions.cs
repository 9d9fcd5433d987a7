namespace AttnDreamBooth.Pipelines.Training;

/// <summary>AdamW hyper-parameters (decoupled weight decay, Loshchilov &amp; Hutter). Defaults are the method's:
/// betas (0.9, 0.999), weight decay 1e-2, eps 1e-8.</summary>
public sealed record AdamWOptions
{
    /// <summary>Learning rate (constant).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Exponential decay of the first moment.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Exponential decay of the second moment.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Decoupled weight decay (note: TorchSharp's own AdamW defaults to 0).</summary>
    public double WeightDecay { get; init; } = 1e-2;

    /// <summary>Added to the denominator for numerical stability.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for values AdamW cannot use.</summary>
    public void Validate()
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be a positive finite number");
        if (!(Beta1 >= 0 && Beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta1), Beta1, "must be in [0, 1)");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta2), Beta2, "must be in [0, 1)");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "must be a non-negative finite number");
        if (!(Epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "must be positive");
    }
}
