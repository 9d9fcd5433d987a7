using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// DEIS (Zhang and Chen 2023, log-rho multistep) as diffusers 0.24 <c>DEISMultistepScheduler</c>: works on the noise
/// prediction e = (x - alpha x0) / sigma_t, with the Lagrange-interpolation coefficients integrated in rho = sigma_t /
/// alpha. Orders 1 to 3 (first order on the first step; with <c>lower_order_final</c> and fewer than 15 steps also on
/// the last two, as DPM-Solver++), thresholding, Karras sigmas, leading/linspace/trailing spacing. Other
/// <c>algorithm_type</c> / <c>solver_type</c> spellings read as deis / logrho, as in the reference. The coefficients are
/// evaluated in float64 (the reference forms them in float32 with cancellation; the two differ by up to 5e-5 relative
/// on third-order steps).
/// </summary>
internal sealed class DeisMultistepScheduler : ExponentialIntegratorSampler
{
    private readonly Tensor?[] _history;
    private int _lowerOrderNums;

    private DeisMultistepScheduler(SchedulerConfig config)
        : base(config, nameof(DeisMultistepScheduler))
    {
        if (config.AlgorithmType != DpmSolverAlgorithm.Deis)
            throw config.Error("algorithm_type", $"{SchedulerConfigKeys.ToDiffusersValue(config.AlgorithmType)} is not supported by DEIS; use deis");
        _history = new Tensor?[config.SolverOrder];
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>DEISMultistepScheduler.from_config</c>).</summary>
    public static DeisMultistepScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DeisMultistepScheduler(config.For(SchedulerClass.DeisMultistep));
    }

    /// <inheritdoc/>
    public override void Reset()
    {
        for (int k = 0; k < _history.Length; k++)
        {
            _history[k]?.Dispose();
            _history[k] = null;
        }
        _lowerOrderNums = 0;
        base.Reset();
    }

    private protected override Tensor StepCore(Tensor modelOutput, Tensor sample, int index)
    {
        int n = Timesteps.Count;
        bool lowerOrderFinal = index == n - 1 && Config.LowerOrderFinal && n < 15;
        bool lowerOrderSecond = index == n - 2 && Config.LowerOrderFinal && n < 15;
        var (alpha, sigmaT) = AlphaSigma(Sigmas[index]);
        var x0 = DataPrediction(modelOutput, sample, index);
        var epsilon = sample.sub(x0.mul(Kept(alpha))).div(Kept(sigmaT));
        _history[0]?.Dispose();
        for (int k = 0; k < _history.Length - 1; k++) _history[k] = _history[k + 1];
        _history[^1] = epsilon.alias().DetachFromDisposeScope();

        Tensor prev;
        // A step that does not change sigma (the last Karras step) leaves the sample as it is (the reference divides by 0).
        if (Sigmas[index + 1] == Sigmas[index]) prev = sample.clone();
        else if (Config.SolverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal) prev = FirstOrder(sample, index);
        else if (Config.SolverOrder == 2 || _lowerOrderNums < 2 || lowerOrderSecond) prev = SecondOrder(sample, index);
        else prev = ThirdOrder(sample, index);
        if (_lowerOrderNums < Config.SolverOrder) _lowerOrderNums++;
        return prev;
    }

    private Tensor FirstOrder(Tensor x, int i)
    {
        var (alphaT, sigmaT) = AlphaSigma(Sigmas[i + 1]);
        var (alphaS, _) = AlphaSigma(Sigmas[i]);
        float h = Lambda(i + 1) - Lambda(i);
        return x.mul(Kept(alphaT / alphaS)).sub(_history[^1]!.mul(Kept(sigmaT * (ScalarMath.Exp(h) - 1f))));
    }

    // rho = sigma_t / alpha, which for these schedules is the step's sigma itself.
    private double Rho(int k)
    {
        var (alpha, sigmaT) = AlphaSigma(Sigmas[k]);
        return sigmaT / alpha;
    }

    private Tensor SecondOrder(Tensor x, int i)
    {
        var (alphaT, _) = AlphaSigma(Sigmas[i + 1]);
        var (alphaS0, _) = AlphaSigma(Sigmas[i]);
        double rhoT = Rho(i + 1), rhoS0 = Rho(i), rhoS1 = Rho(i - 1);
        // The integral of the Lagrange basis through (b, c) in log rho: t (log t - log c - 1) / (log b - log c).
        static double Ind(double t, double b, double c) => t * (-Math.Log(c) + Math.Log(t) - 1) / (Math.Log(b) - Math.Log(c));
        double coef1 = Ind(rhoT, rhoS0, rhoS1) - Ind(rhoS0, rhoS0, rhoS1);
        double coef2 = Ind(rhoT, rhoS1, rhoS0) - Ind(rhoS0, rhoS1, rhoS0);
        return x.div(Kept(alphaS0)).add(_history[^1]!.mul(Kept((float)coef1)), One).add(_history[^2]!.mul(Kept((float)coef2)), One).mul(Kept(alphaT));
    }

    private Tensor ThirdOrder(Tensor x, int i)
    {
        var (alphaT, _) = AlphaSigma(Sigmas[i + 1]);
        var (alphaS0, _) = AlphaSigma(Sigmas[i]);
        double rhoT = Rho(i + 1), rhoS0 = Rho(i), rhoS1 = Rho(i - 1), rhoS2 = Rho(i - 2);
        static double Ind(double t, double b, double c, double d)
        {
            double lt = Math.Log(t), lb = Math.Log(b), lc = Math.Log(c), ld = Math.Log(d);
            double numerator = t * (lc * (ld - lt + 1) - ld * lt + ld + lt * lt - 2 * lt + 2);
            return numerator / ((lb - lc) * (lb - ld));
        }
        double coef1 = Ind(rhoT, rhoS0, rhoS1, rhoS2) - Ind(rhoS0, rhoS0, rhoS1, rhoS2);
        double coef2 = Ind(rhoT, rhoS1, rhoS2, rhoS0) - Ind(rhoS0, rhoS1, rhoS2, rhoS0);
        double coef3 = Ind(rhoT, rhoS2, rhoS0, rhoS1) - Ind(rhoS0, rhoS2, rhoS0, rhoS1);
        return x.div(Kept(alphaS0))
            .add(_history[^1]!.mul(Kept((float)coef1)), One)
            .add(_history[^2]!.mul(Kept((float)coef2)), One)
            .add(_history[^3]!.mul(Kept((float)coef3)), One)
            .mul(Kept(alphaT));
    }
}
