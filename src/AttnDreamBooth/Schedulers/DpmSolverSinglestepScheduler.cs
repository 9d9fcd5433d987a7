using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// DPM-Solver singlestep (Lu et al. 2022) as diffusers 0.24 <c>DPMSolverSinglestepScheduler</c>: the steps are grouped
/// by a fixed order list (order 2: 1, 2, 1, 2, …; order 3: 1, 2, 3, …, ending in lower orders with
/// <c>lower_order_final</c>); an order-1 step saves its input sample and the order-2 / 3 steps of its group restart from
/// that sample with the newer model evaluations. <c>dpmsolver++</c> or <c>dpmsolver</c>, midpoint or Heun rule,
/// thresholding, <c>lambda_min_clipped</c>, Karras sigmas. As in the reference the timesteps always follow the linspace
/// rule (the class takes neither <c>timestep_spacing</c> nor <c>steps_offset</c>).
/// </summary>
internal sealed class DpmSolverSinglestepScheduler : ExponentialIntegratorSampler
{
    private readonly Tensor?[] _history;
    private Tensor? _groupSample;
    private int[] _orders = [];

    private DpmSolverSinglestepScheduler(SchedulerConfig config)
        : base(config, nameof(DpmSolverSinglestepScheduler))
    {
        if (config.AlgorithmType is not (DpmSolverAlgorithm.DpmSolverPlusPlus or DpmSolverAlgorithm.DpmSolver))
            throw config.Error("algorithm_type", $"{SchedulerConfigKeys.ToDiffusersValue(config.AlgorithmType)} is not supported by the singlestep solver; use dpmsolver++ or dpmsolver");
        _history = new Tensor?[config.SolverOrder];
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>DPMSolverSinglestepScheduler.from_config</c>).</summary>
    public static DpmSolverSinglestepScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DpmSolverSinglestepScheduler(config.For(SchedulerClass.DpmSolverSinglestep));
    }

    /// <summary>The solver order of every step (after <see cref="IDiffusionSampler.SetTimesteps"/>).</summary>
    public IReadOnlyList<int> Orders => Array.AsReadOnly(_orders);

    private protected override long[] SpacedTimesteps(int trainSteps, int steps) =>
        TimestepSpacings.DpmSolver(trainSteps, trainSteps - ClippedCount(), steps, TimestepSpacing.Linspace, 0);

    private protected override void OnSetTimesteps(int steps) => _orders = OrderList(steps, Config.SolverOrder,
        // diffusers switches lower_order_final on when the step count is not a multiple of the order.
        Config.LowerOrderFinal || steps % Config.SolverOrder != 0);

    internal static int[] OrderList(int steps, int order, bool lowerOrderFinal)
    {
        static IEnumerable<int> Repeat(int[] group, int times) => Enumerable.Repeat(group, Math.Max(times, 0)).SelectMany(g => g);
        if (!lowerOrderFinal || order == 1) return order switch
        {
            3 => [.. Repeat([1, 2, 3], steps / 3)],
            2 => [.. Repeat([1, 2], steps / 2)],
            _ => [.. Enumerable.Repeat(1, steps)],
        };
        if (order == 3)
        {
            return (steps % 3) switch
            {
                0 => [.. Repeat([1, 2, 3], steps / 3 - 1), 1, 2, 1],
                1 => [.. Repeat([1, 2, 3], steps / 3), 1],
                _ => [.. Repeat([1, 2, 3], steps / 3), 1, 2],
            };
        }
        return steps % 2 == 0 ? [.. Repeat([1, 2], steps / 2)] : [.. Repeat([1, 2], steps / 2), 1];
    }

    // How many of the noisiest timesteps lambda_min_clipped removes (torch.searchsorted on the flipped lambda table).
    private int ClippedCount()
    {
        if (double.IsNegativeInfinity(Config.LambdaMinClipped)) return 0;
        int count = Schedule.NumTrainTimesteps, clipped = 0;
        for (int k = count - 1; k >= 0; k--)
        {
            float a = Schedule.AlphaCumprodAt(k);
            float lambda = ScalarMath.Log(MathF.Sqrt(a)) - ScalarMath.Log(MathF.Sqrt(1f - a));
            if (lambda >= Config.LambdaMinClipped) break;
            clipped++;
        }
        if (clipped >= count) throw Config.Error("lambda_min_clipped", $"{Config.LambdaMinClipped} removes every timestep");
        return clipped;
    }

    /// <inheritdoc/>
    public override void Reset()
    {
        for (int k = 0; k < _history.Length; k++)
        {
            _history[k]?.Dispose();
            _history[k] = null;
        }
        _groupSample?.Dispose();
        _groupSample = null;
        base.Reset();
    }

    private protected override Tensor StepCore(Tensor modelOutput, Tensor sample, int index)
    {
        var converted = Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus
            ? DataPrediction(modelOutput, sample, index)
            : NoisePrediction(modelOutput, sample, index);
        _history[0]?.Dispose();
        for (int k = 0; k < _history.Length - 1; k++) _history[k] = _history[k + 1];
        _history[^1] = converted.alias().DetachFromDisposeScope();

        int order = _orders[index];
        while (_history[^order] is null) order--;
        if (order == 1)
        {
            _groupSample?.Dispose();
            _groupSample = sample.alias().DetachFromDisposeScope();
        }
        return order switch
        {
            1 => FirstOrder(_groupSample!, index),
            2 => SecondOrder(_groupSample!, index),
            _ => ThirdOrder(_groupSample!, index),
        };
    }

    private Tensor NoisePrediction(Tensor modelOutput, Tensor sample, int index)
    {
        var (alpha, sigmaT) = AlphaSigma(Sigmas[index]);
        return PredictionType switch
        {
            PredictionType.Epsilon => modelOutput.alias(),
            PredictionType.Sample => sample.sub(modelOutput.mul(Kept(alpha))).div(Kept(sigmaT)),
            PredictionType.VPrediction => modelOutput.mul(Kept(alpha)).add(sample.mul(Kept(sigmaT)), One),
            _ => throw new InvalidOperationException($"unknown prediction type {PredictionType}"),
        };
    }

    private bool DataMode => Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus;

    private Tensor FirstOrder(Tensor x, int i) => DpmSolverUpdate.FirstOrder(x, _history[^1]!, Sigmas[i], Sigmas[i + 1], DataMode);

    // From the sample saved one step back (at sigma s1) to sigma t, with the evaluations at s1 and s0.
    private Tensor SecondOrder(Tensor x, int i)
    {
        var (alphaT, sigmaT) = AlphaSigma(Sigmas[i + 1]);
        var (alphaS1, sigmaS1) = AlphaSigma(Sigmas[i - 1]);
        float lambdaT = Lambda(i + 1), lambdaS0 = Lambda(i), lambdaS1 = Lambda(i - 1);
        Tensor m0 = _history[^1]!, m1 = _history[^2]!;
        float h = lambdaT - lambdaS1, h0 = lambdaS0 - lambdaS1;
        float r0 = h0 / h;
        var d0 = m1;
        var d1 = m0.sub(m1).mul(Kept(1f / r0));
        bool midpoint = Config.SolverType == DpmSolverType.Midpoint;
        if (DataMode)
        {
            float c = alphaT * (ScalarMath.Exp(-h) - 1f);
            var y = x.mul(Kept(sigmaT / sigmaS1)).sub(d0.mul(Kept(c)));
            return midpoint ? y.sub(d1.mul(Kept(0.5f * c))) : y.add(d1.mul(Kept(alphaT * ((ScalarMath.Exp(-h) - 1f) / h + 1f))), One);
        }
        float e = sigmaT * (ScalarMath.Exp(h) - 1f);
        var z = x.mul(Kept(alphaT / alphaS1)).sub(d0.mul(Kept(e)));
        return midpoint ? z.sub(d1.mul(Kept(0.5f * e))) : z.sub(d1.mul(Kept(sigmaT * ((ScalarMath.Exp(h) - 1f) / h - 1f))));
    }

    // From the sample saved two steps back (at sigma s2) to sigma t, with the evaluations at s2, s1 and s0.
    private Tensor ThirdOrder(Tensor x, int i)
    {
        var (alphaT, sigmaT) = AlphaSigma(Sigmas[i + 1]);
        var (alphaS2, sigmaS2) = AlphaSigma(Sigmas[i - 2]);
        float lambdaT = Lambda(i + 1), lambdaS0 = Lambda(i), lambdaS1 = Lambda(i - 1), lambdaS2 = Lambda(i - 2);
        Tensor m0 = _history[^1]!, m1 = _history[^2]!, m2 = _history[^3]!;
        float h = lambdaT - lambdaS2, h0 = lambdaS0 - lambdaS2, h1 = lambdaS1 - lambdaS2;
        float r0 = h0 / h, r1 = h1 / h;
        var d0 = m2;
        var d10 = m1.sub(m2).mul(Kept(1f / r1));
        var d11 = m0.sub(m2).mul(Kept(1f / r0));
        var d1 = d10.mul(Kept(r0)).sub(d11.mul(Kept(r1))).div(Kept(r0 - r1));
        var d2 = d11.sub(d10).mul(Kept(2f)).div(Kept(r0 - r1));
        bool midpoint = Config.SolverType == DpmSolverType.Midpoint;
        if (DataMode)
        {
            float em = ScalarMath.Exp(-h) - 1f;
            var y = x.mul(Kept(sigmaT / sigmaS2)).sub(d0.mul(Kept(alphaT * em)));
            return midpoint
                ? y.add(d11.mul(Kept(alphaT * (em / h + 1f))), One)
                : y.add(d1.mul(Kept(alphaT * (em / h + 1f))), One).sub(d2.mul(Kept(alphaT * ((em + h) / (h * h) - 0.5f))));
        }
        float ep = ScalarMath.Exp(h) - 1f;
        var z = x.mul(Kept(alphaT / alphaS2)).sub(d0.mul(Kept(sigmaT * ep)));
        return midpoint
            ? z.sub(d11.mul(Kept(sigmaT * (ep / h - 1f))))
            : z.sub(d1.mul(Kept(sigmaT * (ep / h - 1f)))).sub(d2.mul(Kept(sigmaT * ((ep - h) / (h * h) - 0.5f))));
    }
}
