using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// The DPM-Solver arithmetic shared by the multistep and singlestep samplers (and the exponential-integrator base):
/// alpha and sigma_t of a sigma, lambda, and the first-order update, as float32 scalars in the reference's order of
/// operations so every sampler gives the same bits for the same step.
/// </summary>
internal static class DpmSolverUpdate
{
    /// <summary>alpha = 1 / sqrt(sigma^2 + 1) and sigma_t = sigma alpha (float32).</summary>
    public static (float Alpha, float SigmaT) AlphaSigma(float sigma)
    {
        float alpha = 1f / MathF.Sqrt(sigma * sigma + 1f);
        return (alpha, sigma * alpha);
    }

    /// <summary>lambda = log alpha - log sigma_t (float32, torch's rounding).</summary>
    public static float Lambda(float alpha, float sigmaT) => ScalarMath.Log(alpha) - ScalarMath.Log(sigmaT);

    /// <summary>
    /// The first-order step from <paramref name="sigmaS"/> to <paramref name="sigmaT"/> with model output
    /// <paramref name="m0"/>: DPM-Solver++ (<paramref name="dataPrediction"/>, m0 = x0) or DPM-Solver (m0 = epsilon).
    /// </summary>
    public static Tensor FirstOrder(Tensor sample, Tensor m0, float sigmaS, float sigmaT, bool dataPrediction)
    {
        var (alphaT, sigmaTT) = AlphaSigma(sigmaT);
        var (alphaS, sigmaSS) = AlphaSigma(sigmaS);
        float h = Lambda(alphaT, sigmaTT) - Lambda(alphaS, sigmaSS);
        return dataPrediction
            ? sample.mul(Kept(sigmaTT / sigmaSS)).sub(m0.mul(Kept(alphaT * (ScalarMath.Exp(-h) - 1f))))
            : sample.mul(Kept(alphaT / alphaS)).sub(m0.mul(Kept(sigmaTT * (ScalarMath.Exp(h) - 1f))));
    }
}
