using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// UniPC (Zhao et al. 2023) as diffusers 0.24 <c>UniPCMultistepScheduler</c>: at every step after the first, the
/// corrector UniC refines the incoming sample with the new model evaluation, then the predictor UniP of order
/// min(solver_order, steps left, steps taken + 1) moves to the next sigma. <c>solver_type</c> bh1 (B(h) = h) or bh2
/// (B(h) = e^h - 1, the default; midpoint/heun/logrho read as bh2), orders 1 to 3, <c>predict_x0</c> (data or noise
/// prediction), <c>disable_corrector</c>, thresholding, Karras sigmas, leading/linspace/trailing spacing.
/// <c>lower_order_final</c> applies at every step count, unlike DPM-Solver++. An external predictor
/// (<c>solver_p</c>) is not supported.
/// </summary>
internal sealed class UniPCMultistepScheduler : ExponentialIntegratorSampler
{
    private readonly Tensor?[] _history;
    private Tensor? _lastSample;
    private int _lowerOrderNums;
    private int _thisOrder;

    private UniPCMultistepScheduler(SchedulerConfig config)
        : base(config, nameof(UniPCMultistepScheduler))
    {
        if (config.SolverType is not (DpmSolverType.Bh1 or DpmSolverType.Bh2))
            throw config.Error("solver_type", $"{SchedulerConfigKeys.ToDiffusersValue(config.SolverType)} is not a UniPC solver type; use bh1 or bh2");
        _history = new Tensor?[config.SolverOrder];
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>UniPCMultistepScheduler.from_config</c>).</summary>
    public static UniPCMultistepScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new UniPCMultistepScheduler(config.For(SchedulerClass.UniPCMultistep));
    }

    /// <inheritdoc/>
    public override void Reset()
    {
        for (int k = 0; k < _history.Length; k++)
        {
            _history[k]?.Dispose();
            _history[k] = null;
        }
        _lastSample?.Dispose();
        _lastSample = null;
        _lowerOrderNums = 0;
        _thisOrder = 0;
        base.Reset();
    }

    private protected override Tensor StepCore(Tensor modelOutput, Tensor sample, int index)
    {
        int order = Config.SolverOrder;
        bool useCorrector = index > 0 && !Config.DisableCorrector.Contains(index - 1) && _lastSample is not null;
        var converted = Convert(modelOutput, sample, index);
        if (useCorrector) sample = Corrector(converted, _lastSample!, _thisOrder, index);

        _history[0]?.Dispose();
        for (int k = 0; k < order - 1; k++) _history[k] = _history[k + 1];
        _history[^1] = converted.alias().DetachFromDisposeScope();

        int wanted = Config.LowerOrderFinal ? Math.Min(order, Timesteps.Count - index) : order;
        _thisOrder = Math.Min(wanted, _lowerOrderNums + 1);
        _lastSample?.Dispose();
        _lastSample = sample.alias().DetachFromDisposeScope();
        var prev = Predictor(sample, _thisOrder, index);
        if (_lowerOrderNums < order) _lowerOrderNums++;
        return prev;
    }

    // predict_x0: the data prediction; otherwise the noise prediction.
    private Tensor Convert(Tensor modelOutput, Tensor sample, int index)
    {
        if (Config.PredictX0) return DataPrediction(modelOutput, sample, index);
        var (alpha, sigmaT) = AlphaSigma(Sigmas[index]);
        return PredictionType switch
        {
            PredictionType.Epsilon => modelOutput.alias(),
            PredictionType.Sample => sample.sub(modelOutput.mul(Kept(alpha))).div(Kept(sigmaT)),
            PredictionType.VPrediction => modelOutput.mul(Kept(alpha)).add(sample.mul(Kept(sigmaT)), One),
            _ => throw new InvalidOperationException($"unknown prediction type {PredictionType}"),
        };
    }

    // The shared algebra of UniP and UniC: phi_1 = expm1(hh), B(h), and the right-hand side b_j = g_j j! / B(h).
    private (float Phi1, float B, float[] Rhs) Coefficients(float h, int order)
    {
        float hh = Config.PredictX0 ? -h : h;
        float phi1 = ExpM1(hh);
        float b = Config.SolverType == DpmSolverType.Bh1 ? hh : ExpM1(hh);
        var rhs = new float[order];
        float phiK = phi1 / hh - 1f;
        float factorial = 1f;
        for (int j = 1; j <= order; j++)
        {
            rhs[j - 1] = phiK * factorial / b;
            factorial *= j + 1;
            phiK = phiK / hh - 1f / factorial;
        }
        return (phi1, b, rhs);
    }

    private static float ExpM1(float x) => (float)(Math.Exp(x) - 1.0);

    // Solves R rho = b with R's rows rks^(j-1) (j = 1 .. size), in float64, as the reference's float32 linalg.solve.
    private static float[] Solve(float[] rks, float[] rhs, int size)
    {
        var a = new double[size, size + 1];
        for (int row = 0; row < size; row++)
        {
            for (int col = 0; col < size; col++) a[row, col] = MathF.Pow(rks[col], row);
            a[row, size] = rhs[row];
        }
        for (int col = 0; col < size; col++)
        {
            int pivot = col;
            for (int row = col + 1; row < size; row++) if (Math.Abs(a[row, col]) > Math.Abs(a[pivot, col])) pivot = row;
            for (int k = 0; k <= size; k++) (a[col, k], a[pivot, k]) = (a[pivot, k], a[col, k]);
            for (int row = 0; row < size; row++)
            {
                if (row == col) continue;
                double f = a[row, col] / a[col, col];
                for (int k = col; k <= size; k++) a[row, k] -= f * a[col, k];
            }
        }
        var result = new float[size];
        for (int row = 0; row < size; row++) result[row] = (float)(a[row, size] / a[row, row]);
        return result;
    }

    // The base update from the sigma at index s to the sigma at index t, shared by both: sigma_t/sigma_s x - alpha_t phi1 m0
    // (data prediction) or alpha_t/alpha_s x - sigma_t phi1 m0 (noise prediction), and the weight of the higher-order terms.
    private (Tensor Base, float Weight) Baseline(Tensor x, Tensor m0, int t, int s, float phi1, float b)
    {
        var (alphaT, sigmaT) = AlphaSigma(Sigmas[t]);
        var (alphaS, sigmaS) = AlphaSigma(Sigmas[s]);
        return Config.PredictX0
            ? (x.mul(Kept(sigmaT / sigmaS)).sub(m0.mul(Kept(alphaT * phi1))), alphaT * b)
            : (x.mul(Kept(alphaT / alphaS)).sub(m0.mul(Kept(sigmaT * phi1))), sigmaT * b);
    }

    private Tensor Predictor(Tensor x, int order, int index)
    {
        // A step that does not change sigma (the last Karras step) leaves the sample as it is (the reference divides by h = 0).
        if (Sigmas[index + 1] == Sigmas[index]) return x.clone();
        Tensor m0 = _history[^1]!;
        float lambdaS0 = Lambda(index);
        float h = Lambda(index + 1) - lambdaS0;
        var rks = new float[order];
        var d1s = new List<Tensor>();
        for (int k = 1; k < order; k++)
        {
            rks[k - 1] = (Lambda(index - k) - lambdaS0) / h;
            d1s.Add(_history[^(k + 1)]!.sub(m0).div(Kept(rks[k - 1])));
        }
        rks[order - 1] = 1f;
        var (phi1, b, rhs) = Coefficients(h, order);
        var (baseline, weight) = Baseline(x, m0, index + 1, index, phi1, b);
        if (d1s.Count == 0) return baseline;
        float[] rhos = order == 2 ? [0.5f] : Solve(rks, rhs, order - 1);
        Tensor residual = d1s[0].mul(Kept(rhos[0]));
        for (int k = 1; k < d1s.Count; k++) residual = residual.add(d1s[k].mul(Kept(rhos[k])), One);
        return baseline.sub(residual.mul(Kept(weight)));
    }

    private Tensor Corrector(Tensor modelThis, Tensor lastSample, int order, int index)
    {
        Tensor m0 = _history[^1]!;
        float lambdaS0 = Lambda(index - 1);
        float h = Lambda(index) - lambdaS0;
        var rks = new float[order];
        var d1s = new List<Tensor>();
        for (int k = 1; k < order; k++)
        {
            rks[k - 1] = (Lambda(index - (k + 1)) - lambdaS0) / h;
            d1s.Add(_history[^(k + 1)]!.sub(m0).div(Kept(rks[k - 1])));
        }
        rks[order - 1] = 1f;
        var (phi1, b, rhs) = Coefficients(h, order);
        var (baseline, weight) = Baseline(lastSample, m0, index, index - 1, phi1, b);
        float[] rhos = order == 1 ? [0.5f] : Solve(rks, rhs, order);
        Tensor residual = modelThis.sub(m0).mul(Kept(rhos[^1]));
        for (int k = 0; k < d1s.Count; k++) residual = d1s[k].mul(Kept(rhos[k])).add(residual, One);
        return baseline.sub(residual.mul(Kept(weight)));
    }
}
