namespace AttnDreamBooth.Training;

/// <summary>
/// The per-step constants of PyTorch's AdamW (decoupled weight decay, bias-corrected moments), computed once per
/// optimizer step in double precision so that every update path (the one-pass CPU kernel, the tensor-op paths and the
/// multi-op reference) starts from the same numbers.
/// </summary>
/// <param name="LearningRate">lr.</param>
/// <param name="Beta1">Decay of the first moment.</param>
/// <param name="Beta2">Decay of the second moment.</param>
/// <param name="WeightDecay">Decoupled weight decay.</param>
/// <param name="Epsilon">Added to the bias-corrected denominator.</param>
/// <param name="Step">The 1-based step being taken.</param>
internal readonly record struct AdamWStepScalars(double LearningRate, double Beta1, double Beta2, double WeightDecay, double Epsilon, long Step)
{
    /// <summary>1 − lr·wd, the factor the parameter is multiplied by before the update.</summary>
    public double Decay => 1 - LearningRate * WeightDecay;

    /// <summary>1 − β1.</summary>
    public double OneMinusBeta1 => 1 - Beta1;

    /// <summary>1 − β2.</summary>
    public double OneMinusBeta2 => 1 - Beta2;

    /// <summary>1 − β1^t.</summary>
    public double BiasCorrection1 => 1 - Math.Pow(Beta1, Step);

    /// <summary>√(1 − β2^t).</summary>
    public double BiasCorrection2Sqrt => Math.Sqrt(1 - Math.Pow(Beta2, Step));

    /// <summary>lr / (1 − β1^t).</summary>
    public double StepSize => LearningRate / BiasCorrection1;
}
