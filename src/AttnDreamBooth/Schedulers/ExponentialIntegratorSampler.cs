using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// The common ground of the exponential-integrator samplers of diffusers 0.24 other than DPM-Solver++ multistep
/// (UniPC, DPM-Solver singlestep, DEIS): integer timesteps, sigmas = sqrt((1 - a) / a) at them plus a final sigma(0)
/// (the last Karras sigma repeated with Karras sigmas), alpha = 1 / sqrt(sigma^2 + 1), sigma_t = sigma alpha and
/// lambda = log alpha - log sigma_t as float32 scalars, an identity <see cref="ScaleModelInput"/>, and a step counter:
/// each <see cref="Step"/> must be given the timestep at that counter.
/// </summary>
internal abstract class ExponentialIntegratorSampler : IDiffusionSampler
{
    private long[] _timesteps = [];
    private float[] _sigmas = [];
    private bool _disposed;

    /// <summary>Builds the shared state; <paramref name="config"/> is already resolved for the concrete class.</summary>
    private protected ExponentialIntegratorSampler(SchedulerConfig config, string name)
    {
        Name = name;
        Config = config;
        Schedule = NoiseSchedule.FromConfig(config);
        Table = new SigmaTable(Schedule);
    }

    private protected string Name { get; }

    private protected SigmaTable Table { get; }

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
        long[] timesteps;
        float[] sigmas;
        if (Config.UseKarrasSigmas)
        {
            // Karras sigmas between the ends of the whole training table, whatever the spacing.
            double[] karras = SigmaTable.Karras(Table[0], Table[trainSteps - 1], steps);
            timesteps = karras.Select(s => TimestepSpacings.RoundEven(Table.TimestepOf(s))).ToArray();
            sigmas = [.. karras.Select(s => (float)s), (float)karras[^1]];
        }
        else
        {
            timesteps = SpacedTimesteps(trainSteps, steps);
            foreach (long t in timesteps)
            {
                if (t < 0 || t >= trainSteps)
                    throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: with steps_offset {Config.StepsOffset} and {Config.TimestepSpacing} spacing, {steps} steps give timestep {t}, outside [0, {trainSteps})");
            }
            sigmas = [.. timesteps.Select(t => Table[t]), Table[0]];
        }
        _timesteps = timesteps;
        _sigmas = sigmas;
        OnSetTimesteps(steps);
        Reset();
    }

    /// <summary>The class's timestep rule (UniPC and DEIS: the DPM-Solver spacing rules; singlestep: always linspace).</summary>
    private protected virtual long[] SpacedTimesteps(int trainSteps, int steps) =>
        TimestepSpacings.DpmSolver(trainSteps, trainSteps, steps, Config.TimestepSpacing, Config.StepsOffset);

    /// <summary>Called after new timesteps are in place, before <see cref="Reset"/>.</summary>
    private protected virtual void OnSetTimesteps(int steps)
    {
    }

    /// <inheritdoc/>
    public virtual void Reset() => StepIndex = 0;

    /// <inheritdoc/>
    public Tensor ScaleModelInput(Tensor sample, long timestep) => sample;

    /// <inheritdoc/>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int n = _timesteps.Length;
        if (n == 0) throw new SchedulerException(Name, "Step was called before SetTimesteps; call SetTimesteps(steps) first");
        if (StepIndex >= n) throw new SchedulerException(Name, $"all {n} steps have been taken; call Reset or SetTimesteps to sample again");
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
        var x = sample.dtype == ScalarType.Float32 ? sample : sample.to_type(ScalarType.Float32);
        var prev = StepCore(modelOutput.dtype == ScalarType.Float32 ? modelOutput : modelOutput.to_type(ScalarType.Float32), x, StepIndex);
        if (prev.dtype != sample.dtype) prev = prev.to_type(sample.dtype);
        StepIndex++;
        return new SchedulerStepOutput(prev.MoveToOuterDisposeScope(), null);
    }

    /// <summary>The class's update at step <paramref name="index"/> (float32 inputs).</summary>
    private protected abstract Tensor StepCore(Tensor modelOutput, Tensor sample, int index);

    /// <summary>alpha = 1 / sqrt(sigma^2 + 1) and sigma_t = sigma alpha (float32).</summary>
    private protected static (float Alpha, float SigmaT) AlphaSigma(float sigma) => DpmSolverUpdate.AlphaSigma(sigma);

    /// <summary>lambda = log alpha - log sigma_t at step-sigma index <paramref name="k"/> (float32, torch's rounding).</summary>
    private protected float Lambda(int k)
    {
        var (alpha, sigmaT) = AlphaSigma(_sigmas[k]);
        return DpmSolverUpdate.Lambda(alpha, sigmaT);
    }

    /// <summary>The data prediction x0 from the model output at step-sigma index <paramref name="k"/>, thresholded if configured.</summary>
    private protected Tensor DataPrediction(Tensor modelOutput, Tensor sample, int k)
    {
        var (alpha, sigmaT) = AlphaSigma(_sigmas[k]);
        var x0 = PredictionType switch
        {
            PredictionType.Epsilon => sample.sub(modelOutput.mul(Kept(sigmaT))).div(Kept(alpha)),
            PredictionType.Sample => modelOutput.alias(),
            PredictionType.VPrediction => sample.mul(Kept(alpha)).sub(modelOutput.mul(Kept(sigmaT))),
            _ => throw new InvalidOperationException($"unknown prediction type {PredictionType}"),
        };
        return Config.Thresholding ? SampleOps.Threshold(x0, Config.DynamicThresholdingRatio, Config.SampleMaxValue) : x0;
    }

    /// <summary>The forward process: alpha x0 + sigma_t noise, with the sigma of each timestep's step.</summary>
    /// <param name="originalSamples">x0 [B, ...].</param>
    /// <param name="noise">Noise shaped like x0.</param>
    /// <param name="timesteps">One entry of <see cref="Timesteps"/> per batch row (or one for all).</param>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, IReadOnlyList<long> timesteps)
    {
        ArgumentNullException.ThrowIfNull(originalSamples);
        ArgumentNullException.ThrowIfNull(noise);
        ArgumentNullException.ThrowIfNull(timesteps);
        if (!originalSamples.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"{Name}: noise has shape [{string.Join(", ", noise.shape)}] but the samples have [{string.Join(", ", originalSamples.shape)}]", nameof(noise));
        var pairs = timesteps.Select(t => AlphaSigma(_sigmas[SigmaIndexOf(t)])).ToArray();
        using var scope = NewDisposeScope();
        long[] shape = Enumerable.Repeat(1L, (int)originalSamples.dim()).ToArray();
        shape[0] = pairs.Length;
        var alpha = tensor(pairs.Select(p => p.Alpha).ToArray(), device: originalSamples.device).to_type(originalSamples.dtype).reshape(shape);
        var sigmaT = tensor(pairs.Select(p => p.SigmaT).ToArray(), device: originalSamples.device).to_type(originalSamples.dtype).reshape(shape);
        return alpha.mul(originalSamples).add(sigmaT.mul(noise), One).MoveToOuterDisposeScope();
    }

    /// <summary>The index into <see cref="Sigmas"/> that <see cref="AddNoise"/> uses for <paramref name="timestep"/>.</summary>
    /// <exception cref="SchedulerException">The timestep is not in the schedule.</exception>
    public int SigmaIndexOf(long timestep)
    {
        int index = Array.IndexOf(_timesteps, timestep);
        return index >= 0
            ? index
            : throw SchedulerException.TimestepNotInSchedule(Name, timestep, _timesteps.Length == 0 ? "cannot be looked up before SetTimesteps" : "is not in the schedule");
    }

    /// <summary>Releases the previous predictions the solver keeps.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Reset();
        _disposed = true;
        GC.SuppressFinalize(this);
    }
}
