using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// The common ground of the k-diffusion samplers of diffusers 0.24 (Euler, Euler ancestral, LMS, Heun, KDPM2): they
/// work on sigma = sqrt((1 - a) / a) instead of a, start from noise scaled by <see cref="InitNoiseSigma"/>, scale the
/// model input by 1 / sqrt(sigma^2 + 1), and hand the model fractional timesteps (<see cref="ModelTimesteps"/>;
/// <see cref="Timesteps"/> holds them rounded). The step index is a counter: each <see cref="Step(Tensor, double, Tensor, Generator?)"/>
/// must be given the timestep at that counter.
/// </summary>
internal abstract class KDiffusionSampler : IDiffusionSampler
{
    private double[] _modelTimesteps = [];
    private long[] _timesteps = [];
    private float[] _sigmas = [];
    private bool _disposed;

    /// <summary>Builds the shared state; <paramref name="config"/> is already resolved for the concrete class.</summary>
    private protected KDiffusionSampler(SchedulerConfig config, string name)
    {
        Name = name;
        Config = config;
        Schedule = NoiseSchedule.FromConfig(config);
        Table = new SigmaTable(Schedule);
    }

    /// <summary>The class name used in messages.</summary>
    private protected string Name { get; }

    private protected SigmaTable Table { get; }

    /// <inheritdoc/>
    public SchedulerConfig Config { get; }

    /// <inheritdoc/>
    public NoiseSchedule Schedule { get; }

    /// <inheritdoc/>
    public PredictionType PredictionType => Config.PredictionType;

    /// <summary>max(sigmas) for linspace and trailing spacing, sqrt(max(sigmas)^2 + 1) for leading (float32, as diffusers).
    /// 1 before <see cref="SetTimesteps"/>.</summary>
    public double InitNoiseSigma { get; private set; } = 1.0;

    /// <inheritdoc/>
    public IReadOnlyList<long> Timesteps => Array.AsReadOnly(_timesteps);

    /// <summary>The timesteps the model is given, first to last: fractional for linspace spacing, Karras sigmas and
    /// KDPM2's interpolated steps (float32 values, float64 for LMS and Heun with Karras sigmas, as diffusers holds them).</summary>
    public IReadOnlyList<double> ModelTimesteps => Array.AsReadOnly(_modelTimesteps);

    /// <summary>The sigma of every step as diffusers holds them (float32; length per class, ending in 0).</summary>
    public IReadOnlyList<float> Sigmas => Array.AsReadOnly(_sigmas);

    /// <inheritdoc/>
    public int StepIndex { get; private set; }

    /// <inheritdoc/>
    public Tensor TimestepsTensor(Device? device = null) => tensor(_timesteps, device: device);

    /// <summary><see cref="ModelTimesteps"/> as a float32 tensor (what the model is given).</summary>
    public Tensor ModelTimestepsTensor(Device? device = null) => tensor(_modelTimesteps.Select(t => (float)t).ToArray(), device: device);

    /// <summary><see cref="Sigmas"/> as a float32 tensor.</summary>
    public Tensor SigmasTensor(Device? device = null) => tensor(_sigmas, device: device);

    /// <inheritdoc/>
    public void SetTimesteps(int steps)
    {
        int trainSteps = Schedule.NumTrainTimesteps;
        if (steps < 1 || steps > trainSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: the number of inference steps must lie in [1, {trainSteps}] (num_train_timesteps)");
        double[] timesteps = SigmaTable.KDiffusionTimesteps(trainSteps, steps, Config.TimestepSpacing, Config.StepsOffset).Select(t => (double)t).ToArray();
        double[] sigmas = timesteps.Select(Table.Interp).ToArray();
        if (Config.UseKarrasSigmas && TakesKarrasSigmas)
        {
            var (low, high) = KarrasBounds;
            sigmas = SigmaTable.Karras(low ?? sigmas[^1], high ?? sigmas[0], steps);
            timesteps = sigmas.Select(s => KarrasTimestep(Table.TimestepOf(s))).ToArray();
        }
        var (modelTimesteps, stepSigmas) = Arrange(timesteps, sigmas);
        _modelTimesteps = modelTimesteps;
        _timesteps = modelTimesteps.Select(t => (long)Math.Round(t, MidpointRounding.ToEven)).ToArray();
        _sigmas = stepSigmas;
        float max = _sigmas.Max();
        InitNoiseSigma = Config.TimestepSpacing is TimestepSpacing.Linspace or TimestepSpacing.Trailing ? max : MathF.Sqrt(max * max + 1f);
        Reset();
    }

    /// <summary>Whether the class takes <c>use_karras_sigmas</c> (Euler ancestral does not, in diffusers 0.24).</summary>
    private protected virtual bool TakesKarrasSigmas => true;

    /// <summary>The Karras range; null ends take the spaced sigmas' ends.</summary>
    private protected virtual (double? Min, double? Max) KarrasBounds => (null, null);

    /// <summary>How a Karras timestep is stored (Euler: float32; LMS, Heun: float64; KDPM2: rounded).</summary>
    private protected virtual double KarrasTimestep(double t) => t;

    /// <summary>The class's timesteps and sigmas from the N spaced ones (default: as they are, sigmas ending in 0).</summary>
    private protected virtual (double[] Timesteps, float[] Sigmas) Arrange(double[] timesteps, double[] sigmas) =>
        (timesteps, [.. sigmas.Select(s => (float)s), 0f]);

    /// <inheritdoc/>
    public virtual void Reset() => StepIndex = 0;

    /// <summary>The sigma the model input is scaled with at step <paramref name="index"/>.</summary>
    private protected virtual float InputSigma(int index) => _sigmas[index];

    /// <inheritdoc/>
    public Tensor ScaleModelInput(Tensor sample, long timestep) => ScaleModelInput(sample, (double)timestep);

    /// <summary>sample / sqrt(sigma^2 + 1) with the sigma of the current step.</summary>
    public Tensor ScaleModelInput(Tensor sample, double timestep)
    {
        ArgumentNullException.ThrowIfNull(sample);
        CheckTimestep(timestep);
        float sigma = InputSigma(StepIndex);
        return sample.div(Kept(MathF.Sqrt(sigma * sigma + 1f)));
    }

    /// <inheritdoc/>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null) =>
        Step(modelOutput, (double)timestep, sample, generator);

    /// <summary>One step at the current counter; <paramref name="timestep"/> must be that step's entry of
    /// <see cref="ModelTimesteps"/> (or of <see cref="Timesteps"/>).</summary>
    public SchedulerStepOutput Step(Tensor modelOutput, double timestep, Tensor sample, Generator? generator = null) =>
        StepWith(modelOutput, timestep, sample, generator, null);

    private protected SchedulerStepOutput StepWith(Tensor modelOutput, double timestep, Tensor sample, Generator? generator, Tensor? noise)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckTimestep(timestep);
        SampleOps.CheckSameShape(modelOutput, sample, Name);
        using var scope = NewDisposeScope();
        var (prev, x0) = StepCore(modelOutput, sample, StepIndex, generator, noise);
        StepIndex++;
        return new SchedulerStepOutput(prev.MoveToOuterDisposeScope(), x0?.MoveToOuterDisposeScope());
    }

    /// <summary>The class's update at step <paramref name="index"/>: x_{next} and, where the class forms one, x0.</summary>
    private protected abstract (Tensor Prev, Tensor? X0) StepCore(Tensor modelOutput, Tensor sample, int index, Generator? generator, Tensor? noise);

    /// <summary>x0 from the model output at <paramref name="sigma"/> (epsilon: x - sigma m; v: the VE form; sample: m).</summary>
    private protected Tensor PredictX0(Tensor modelOutput, Tensor sample, float sigma) => PredictionType switch
    {
        PredictionType.Epsilon => sample.sub(modelOutput.mul(Kept(sigma))),
        PredictionType.VPrediction => modelOutput.mul(Kept(-sigma / MathF.Sqrt(sigma * sigma + 1f))).add(sample.div(Kept(sigma * sigma + 1f)), One),
        PredictionType.Sample => modelOutput.alias(),
        _ => throw new InvalidOperationException($"unknown prediction type {PredictionType}"),
    };

    /// <summary>The forward process of these samplers: x0 + noise * sigma, with sigma looked up from each timestep's
    /// position in <see cref="ModelTimesteps"/> (of two equal entries, the second, as diffusers).</summary>
    /// <param name="originalSamples">x0 [B, ...].</param>
    /// <param name="noise">Noise shaped like x0.</param>
    /// <param name="timesteps">One entry of <see cref="ModelTimesteps"/> per batch row (or one for all).</param>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, IReadOnlyList<double> timesteps)
    {
        ArgumentNullException.ThrowIfNull(originalSamples);
        ArgumentNullException.ThrowIfNull(noise);
        ArgumentNullException.ThrowIfNull(timesteps);
        if (!originalSamples.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"{Name}: noise has shape [{string.Join(", ", noise.shape)}] but the samples have [{string.Join(", ", originalSamples.shape)}]", nameof(noise));
        var sigmas = timesteps.Select(t => _sigmas[SigmaIndexOf(t)]).ToArray();
        using var scope = NewDisposeScope();
        long[] shape = Enumerable.Repeat(1L, (int)originalSamples.dim()).ToArray();
        shape[0] = sigmas.Length;
        var sigma = tensor(sigmas, device: originalSamples.device).to_type(originalSamples.dtype).reshape(shape);
        return originalSamples.add(noise.mul(sigma), One).MoveToOuterDisposeScope();
    }

    /// <summary>The index into <see cref="Sigmas"/> that <see cref="AddNoise"/> uses for <paramref name="timestep"/>.</summary>
    /// <exception cref="SchedulerException">The timestep is not in the schedule.</exception>
    public int SigmaIndexOf(double timestep)
    {
        var matches = Enumerable.Range(0, _modelTimesteps.Length).Where(i => (float)_modelTimesteps[i] == (float)timestep).Take(2).ToArray();
        if (matches.Length == 0)
            throw SchedulerException.TimestepNotInSchedule(Name, (long)timestep, _modelTimesteps.Length == 0 ? "cannot be looked up before SetTimesteps" : "is not in the schedule");
        return matches[^1];
    }

    private void CheckTimestep(double timestep)
    {
        int n = _modelTimesteps.Length;
        if (n == 0) throw new SchedulerException(Name, "Step or ScaleModelInput was called before SetTimesteps; call SetTimesteps(steps) first");
        if (StepIndex >= n) throw new SchedulerException(Name, $"all {n} steps have been taken; call Reset or SetTimesteps to sample again");
        if (timestep != _modelTimesteps[StepIndex] && (float)timestep != (float)_modelTimesteps[StepIndex] && timestep != _timesteps[StepIndex])
            throw SchedulerException.TimestepNotInSchedule(Name, (long)Math.Round(timestep), $"({timestep}) was passed at step {StepIndex}, whose timestep is {_modelTimesteps[StepIndex]}; steps must follow the timesteps in order");
    }

    /// <summary>Releases what the sampler keeps between steps.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Reset();
        _disposed = true;
        GC.SuppressFinalize(this);
    }
}
