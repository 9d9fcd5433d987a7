using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// DPM-Solver++ multistep (Lu et al. 2022) as diffusers 0.24 <c>DPMSolverMultistepScheduler</c>: the sampler of the
/// official AttnDreamBooth images. Orders 1 to 3, midpoint or Heun second-order rule, <c>dpmsolver++</c> (data
/// prediction, the default) or <c>dpmsolver</c> (noise prediction), <c>lower_order_final</c> (only below 15 steps,
/// as the reference), <c>euler_at_final</c>, Karras sigmas or uniform-log-SNR (Lu) steps, leading, linspace or
/// trailing spacing, <c>lambda_min_clipped</c>. The step index is a counter (timesteps can repeat with Karras
/// sigmas), and each <see cref="Step"/> must be given the timestep at that counter.
/// </summary>
internal sealed class DpmSolverMultistepScheduler : IDiffusionSampler
{
    private const string Name = nameof(DpmSolverMultistepScheduler);
    private readonly float[] _sigmaTable;
    private readonly float[] _logSigmaTable;
    private long[] _timesteps = [];
    private HashSet<long> _timestepSet = [];
    private float[] _sigmas = [];
    private readonly Tensor?[] _history;
    private int _lowerOrderNums;
    private bool _disposed;

    private DpmSolverMultistepScheduler(SchedulerConfig config)
    {
        if (config.AlgorithmType is DpmSolverAlgorithm.SdeDpmSolver or DpmSolverAlgorithm.SdeDpmSolverPlusPlus)
            throw config.Error("algorithm_type", $"{SchedulerConfigKeys.ToDiffusersValue(config.AlgorithmType)} (the stochastic variant) is not supported; use dpmsolver++ or dpmsolver");
        if (config.UseKarrasSigmas && config.UseLuLambdas)
            throw config.Error("use_lu_lambdas", "use_karras_sigmas and use_lu_lambdas cannot both be true");
        Config = config;
        Schedule = NoiseSchedule.FromConfig(config);
        int count = Schedule.NumTrainTimesteps;
        _sigmaTable = new float[count];
        _logSigmaTable = new float[count];
        for (int t = 0; t < count; t++)
        {
            float a = Schedule.AlphaCumprodAt(t);
            _sigmaTable[t] = MathF.Sqrt((1f - a) / a);
            _logSigmaTable[t] = ScalarMath.Log(_sigmaTable[t]);
        }
        _history = new Tensor?[config.SolverOrder];
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>DPMSolverMultistepScheduler.from_config</c>):
    /// keys of other classes (<c>clip_sample</c>, <c>set_alpha_to_one</c>, …) are ignored, and a file without
    /// <c>timestep_spacing</c> gets this class's default, linspace.</summary>
    public static DpmSolverMultistepScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DpmSolverMultistepScheduler(config.For(SchedulerClass.DpmSolverMultistep));
    }

    /// <inheritdoc/>
    public SchedulerConfig Config { get; }

    /// <inheritdoc/>
    public NoiseSchedule Schedule { get; }

    /// <inheritdoc/>
    public PredictionType PredictionType => Config.PredictionType;

    /// <inheritdoc/>
    public double InitNoiseSigma => 1.0;

    /// <inheritdoc/>
    public IReadOnlyList<long> Timesteps => Array.AsReadOnly(_timesteps);

    /// <summary>The sigma of each step plus the final sigma the last step ends at (N + 1 float32 values).</summary>
    public IReadOnlyList<float> Sigmas => Array.AsReadOnly(_sigmas);

    /// <inheritdoc/>
    public int StepIndex { get; private set; }

    /// <inheritdoc/>
    public Tensor TimestepsTensor(Device? device = null) => tensor(_timesteps, device: device);

    /// <summary><see cref="Sigmas"/> as a float32 tensor [N + 1].</summary>
    public Tensor SigmasTensor(Device? device = null) => tensor(_sigmas, device: device);

    /// <inheritdoc/>
    public void SetTimesteps(int steps)
    {
        int trainSteps = Schedule.NumTrainTimesteps;
        if (steps < 1 || steps > trainSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: the number of inference steps must lie in [1, {trainSteps}] (num_train_timesteps)");
        int last = trainSteps - ClippedCount();
        long[] timesteps = TimestepSpacings.DpmSolver(trainSteps, last, steps, Config.TimestepSpacing, Config.StepsOffset);
        float[] sigmas;
        if (Config.UseKarrasSigmas || Config.UseLuLambdas)
        {
            double[] continuous = Config.UseKarrasSigmas ? KarrasSigmas(steps) : LuSigmas(steps);
            timesteps = continuous.Select(s => TimestepSpacings.RoundEven(SigmaToTimestep(s))).ToArray();
            // The final sigma repeats the last one: the last step then leaves the sample unchanged, as the reference.
            sigmas = [.. continuous.Select(s => (float)s), (float)continuous[^1]];
        }
        else
        {
            foreach (long t in timesteps)
            {
                if (t < 0 || t >= trainSteps)
                    throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: with steps_offset {Config.StepsOffset} and {Config.TimestepSpacing} spacing, {steps} steps give timestep {t}, outside [0, {trainSteps})");
            }
            sigmas = [.. timesteps.Select(t => _sigmaTable[t]), _sigmaTable[0]];
        }
        _timesteps = timesteps;
        _timestepSet = [.. timesteps];
        _sigmas = sigmas;
        Reset();
    }

    /// <summary>Starts at step <paramref name="index"/> instead of 0 (image-to-image starts part-way), dropping the history.</summary>
    public void SetBeginIndex(int index)
    {
        if (_timesteps.Length == 0) throw new SchedulerException(Name, "SetBeginIndex was called before SetTimesteps");
        if (index < 0 || index >= _timesteps.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"must lie in [0, {_timesteps.Length})");
        Reset();
        StepIndex = index;
    }

    /// <inheritdoc/>
    public void Reset()
    {
        for (int i = 0; i < _history.Length; i++)
        {
            _history[i]?.Dispose();
            _history[i] = null;
        }
        _lowerOrderNums = 0;
        StepIndex = 0;
    }

    /// <inheritdoc/>
    public Tensor ScaleModelInput(Tensor sample, long timestep) => sample;

    /// <inheritdoc/>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int n = _timesteps.Length;
        if (n == 0) throw new SchedulerException(Name, "Step was called before SetTimesteps; call SetTimesteps(steps) first");
        if (StepIndex >= n) throw new SchedulerException(Name, $"all {n} steps have been taken; call Reset or SetTimesteps to sample again");
        if (!_timestepSet.Contains(timestep))
            throw SchedulerException.TimestepNotInSchedule(Name, timestep, $"is not in the schedule set by SetTimesteps({n}) ({_timesteps[0]} … {_timesteps[^1]})");
        if (_timesteps[StepIndex] != timestep)
            throw SchedulerException.TimestepNotInSchedule(Name, timestep, $"was passed at step {StepIndex}, whose timestep is {_timesteps[StepIndex]}; steps must follow Timesteps in order");
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        using var scope = NewDisposeScope();
        if (Config.VarianceType is DdpmVarianceType.Learned or DdpmVarianceType.LearnedRange && modelOutput.dim() >= 2 && sample.dim() >= 2
            && modelOutput.shape[1] == 2 * sample.shape[1])
        {
            modelOutput = modelOutput.narrow(1, 0, sample.shape[1]);
        }
        SampleOps.CheckSameShape(modelOutput, sample, Name);

        int i = StepIndex;
        bool lowerOrderFinal = i == n - 1 && (Config.EulerAtFinal || (Config.LowerOrderFinal && n < 15));
        bool lowerOrderSecond = i == n - 2 && Config.LowerOrderFinal && n < 15;

        var converted = ConvertModelOutput(modelOutput, sample, _sigmas[i]);
        _history[0]?.Dispose();
        for (int k = 0; k < _history.Length - 1; k++) _history[k] = _history[k + 1];
        _history[^1] = converted.alias().DetachFromDisposeScope();

        var x = sample.dtype == ScalarType.Float32 ? sample : sample.to_type(ScalarType.Float32);
        Tensor prev;
        // A step that does not change sigma (the last Karras step) leaves the sample as it is. The reference's
        // midpoint formula gives exactly that; its Heun and third-order formulas would divide 0 by 0.
        if (_sigmas[i + 1] == _sigmas[i]) prev = x.clone();
        else if (Config.SolverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal) prev = FirstOrder(converted, x, i);
        else if (Config.SolverOrder == 2 || _lowerOrderNums < 2 || lowerOrderSecond) prev = SecondOrder(x, i);
        else prev = ThirdOrder(x, i);
        if (_lowerOrderNums < Config.SolverOrder) _lowerOrderNums++;
        if (prev.dtype != modelOutput.dtype) prev = prev.to_type(modelOutput.dtype);
        StepIndex++;
        var x0 = Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus ? converted.MoveToOuterDisposeScope() : null;
        return new SchedulerStepOutput(prev.MoveToOuterDisposeScope(), x0);
    }

    /// <summary>Releases the previous predictions the multistep solver keeps.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Reset();
        _disposed = true;
    }

    private static (float Alpha, float SigmaT) AlphaSigma(float sigma) => DpmSolverUpdate.AlphaSigma(sigma);

    private static float Lambda(float alpha, float sigmaT) => DpmSolverUpdate.Lambda(alpha, sigmaT);

    // dpmsolver++ works on the data prediction x0, dpmsolver on the noise prediction.
    private Tensor ConvertModelOutput(Tensor modelOutput, Tensor sample, float sigma)
    {
        var (alpha, sigmaT) = AlphaSigma(sigma);
        if (Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus)
        {
            var (x0, _) = SampleOps.Predict(PredictionType, modelOutput, sample, alpha, sigmaT);
            return Config.Thresholding ? SampleOps.Threshold(x0, Config.DynamicThresholdingRatio, Config.SampleMaxValue) : x0;
        }
        var epsilon = PredictionType switch
        {
            PredictionType.Epsilon => modelOutput.alias(),
            PredictionType.Sample => sample.sub(modelOutput.mul(Kept(alpha))).div(Kept(sigmaT)),
            PredictionType.VPrediction => modelOutput.mul(Kept(alpha)).add(sample.mul(Kept(sigmaT)), One),
            _ => throw new InvalidOperationException($"unknown prediction type {PredictionType}"),
        };
        if (!Config.Thresholding) return epsilon;
        var thresholded = SampleOps.Threshold(sample.sub(epsilon.mul(Kept(sigmaT))).div(Kept(alpha)), Config.DynamicThresholdingRatio, Config.SampleMaxValue);
        return sample.sub(thresholded.mul(Kept(alpha))).div(Kept(sigmaT));
    }

    private Tensor FirstOrder(Tensor m0, Tensor sample, int i) =>
        DpmSolverUpdate.FirstOrder(sample, m0, _sigmas[i], _sigmas[i + 1], Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus);

    private Tensor SecondOrder(Tensor sample, int i)
    {
        var (alphaT, sigmaT) = AlphaSigma(_sigmas[i + 1]);
        var (alphaS0, sigmaS0) = AlphaSigma(_sigmas[i]);
        var (alphaS1, sigmaS1) = AlphaSigma(_sigmas[i - 1]);
        float lambdaT = Lambda(alphaT, sigmaT), lambdaS0 = Lambda(alphaS0, sigmaS0), lambdaS1 = Lambda(alphaS1, sigmaS1);
        Tensor m0 = _history[^1]!, m1 = _history[^2]!;
        float h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1;
        float r0 = h0 / h;
        // With Karras sigmas the last step has h = 0: r0 is infinite, 1 / r0 = 0, and the step returns its input.
        var d1 = m0.sub(m1).mul(Kept(1f / r0));
        if (Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus)
        {
            float c = alphaT * (ScalarMath.Exp(-h) - 1f);
            var x = sample.mul(Kept(sigmaT / sigmaS0)).sub(m0.mul(Kept(c)));
            return Config.SolverType == DpmSolverType.Midpoint
                ? x.sub(d1.mul(Kept(0.5f * c)))
                : x.add(d1.mul(Kept(alphaT * ((ScalarMath.Exp(-h) - 1f) / h + 1f))), One);
        }
        float e = sigmaT * (ScalarMath.Exp(h) - 1f);
        var y = sample.mul(Kept(alphaT / alphaS0)).sub(m0.mul(Kept(e)));
        return Config.SolverType == DpmSolverType.Midpoint
            ? y.sub(d1.mul(Kept(0.5f * e)))
            : y.sub(d1.mul(Kept(sigmaT * ((ScalarMath.Exp(h) - 1f) / h - 1f))));
    }

    private Tensor ThirdOrder(Tensor sample, int i)
    {
        var (alphaT, sigmaT) = AlphaSigma(_sigmas[i + 1]);
        var (alphaS0, sigmaS0) = AlphaSigma(_sigmas[i]);
        var (alphaS1, sigmaS1) = AlphaSigma(_sigmas[i - 1]);
        var (alphaS2, sigmaS2) = AlphaSigma(_sigmas[i - 2]);
        float lambdaT = Lambda(alphaT, sigmaT), lambdaS0 = Lambda(alphaS0, sigmaS0);
        float lambdaS1 = Lambda(alphaS1, sigmaS1), lambdaS2 = Lambda(alphaS2, sigmaS2);
        Tensor m0 = _history[^1]!, m1 = _history[^2]!, m2 = _history[^3]!;
        float h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1, h1 = lambdaS1 - lambdaS2;
        float r0 = h0 / h, r1 = h1 / h;
        var d10 = m0.sub(m1).mul(Kept(1f / r0));
        var d11 = m1.sub(m2).mul(Kept(1f / r1));
        var d1 = d10.add(d10.sub(d11).mul(Kept(r0 / (r0 + r1))), One);
        var d2 = d10.sub(d11).mul(Kept(1f / (r0 + r1)));
        if (Config.AlgorithmType == DpmSolverAlgorithm.DpmSolverPlusPlus)
        {
            float em = ScalarMath.Exp(-h) - 1f;
            return sample.mul(Kept(sigmaT / sigmaS0))
                .sub(m0.mul(Kept(alphaT * em)))
                .add(d1.mul(Kept(alphaT * (em / h + 1f))), One)
                .sub(d2.mul(Kept(alphaT * ((em + h) / (h * h) - 0.5f))));
        }
        float ep = ScalarMath.Exp(h) - 1f;
        return sample.mul(Kept(alphaT / alphaS0))
            .sub(m0.mul(Kept(sigmaT * ep)))
            .sub(d1.mul(Kept(sigmaT * (ep / h - 1f))))
            .sub(d2.mul(Kept(sigmaT * ((ep - h) / (h * h) - 0.5f))));
    }

    // How many of the noisiest timesteps lambda_min_clipped removes (diffusers: searchsorted on the flipped lambda table).
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

    // Karras et al. 2022: sigmas evenly spaced in sigma^(1/7) from the largest to the smallest training sigma (float64).
    private double[] KarrasSigmas(int steps)
    {
        const double rho = 7.0;
        double sigmaMin = _sigmaTable[0], sigmaMax = _sigmaTable[^1];
        double minInv = Math.Pow(sigmaMin, 1 / rho), maxInv = Math.Pow(sigmaMax, 1 / rho);
        return TimestepSpacings.Linspace(0, 1, steps).Select(r => Math.Pow(maxInv + r * (minInv - maxInv), rho)).ToArray();
    }

    // Lu et al.: evenly spaced in log sigma (= -lambda) between the table's ends.
    private double[] LuSigmas(int steps)
    {
        double lambdaMin = _logSigmaTable[0], lambdaMax = _logSigmaTable[^1];
        return TimestepSpacings.Linspace(0, 1, steps).Select(r => Math.Exp(lambdaMax + r * (lambdaMin - lambdaMax))).ToArray();
    }

    // The fractional training timestep of a sigma: linear interpolation in log sigma between neighbouring table entries.
    // float32 where the reference's numpy arithmetic is float32 (the table, the distances, the weight).
    private double SigmaToTimestep(double sigma)
    {
        float logSigma = (float)Math.Log(Math.Max(sigma, 1e-10));
        int count = _logSigmaTable.Length;
        int low = 0;
        for (int j = 0; j < count; j++)
        {
            if (logSigma - _logSigmaTable[j] >= 0) low = j;
        }
        low = Math.Min(low, count - 2);
        int high = low + 1;
        float lowLog = _logSigmaTable[low], highLog = _logSigmaTable[high];
        float w = Math.Clamp((lowLog - logSigma) / (lowLog - highLog), 0f, 1f);
        return (1f - w) * (double)low + w * (double)high;
    }
}
