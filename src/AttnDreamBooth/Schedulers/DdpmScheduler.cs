using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// DDPM (Ho et al. 2020) as diffusers 0.24 <c>DDPMScheduler</c>. Training: <see cref="AddNoise"/>,
/// <see cref="GetVelocity"/>, <see cref="GetTrainingTarget"/>, <see cref="SampleTimesteps"/>. Sampling: without
/// <see cref="SetTimesteps"/> it steps the full training schedule (t → t-1); after <c>SetTimesteps(M)</c> the previous
/// timestep is t - T / M. Variance types fixed_small, fixed_small_log, fixed_large, learned and learned_range.
/// </summary>
internal sealed class DdpmScheduler : IDiffusionSampler, ITrainingNoiseScheduler
{
    private const string Name = nameof(DdpmScheduler);
    private long[] _timesteps;
    private int? _inferenceSteps;

    private DdpmScheduler(SchedulerConfig config, NoiseSchedule schedule)
    {
        Config = config;
        Schedule = schedule;
        _timesteps = FullSchedule();
    }

    /// <summary>Builds the scheduler from any scheduler config (diffusers <c>DDPMScheduler.from_config</c>).</summary>
    public static DdpmScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var ddpm = config.For(SchedulerClass.Ddpm);
        return new DdpmScheduler(ddpm, NoiseSchedule.FromConfig(ddpm));
    }

    /// <summary>
    /// The scheduler that adds training noise to a model whose sampler is <paramref name="config"/>: as
    /// <see cref="FromConfig"/>, but a config asking for zero terminal SNR (<c>rescale_betas_zero_snr</c>) gets the
    /// rescaled schedule it was sampled with (see <see cref="NoiseSchedule.ForTraining"/>).
    /// </summary>
    public static DdpmScheduler ForTraining(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var ddpm = config.For(SchedulerClass.Ddpm);
        return new DdpmScheduler(ddpm, NoiseSchedule.ForTraining(ddpm));
    }

    /// <inheritdoc/>
    public SchedulerConfig Config { get; }

    /// <inheritdoc/>
    public NoiseSchedule Schedule { get; }

    /// <inheritdoc cref="IDiffusionSampler.PredictionType"/>
    public PredictionType PredictionType => Config.PredictionType;

    /// <summary>The effective variance type (a null <c>variance_type</c> behaves as fixed_small, as in diffusers).</summary>
    public DdpmVarianceType VarianceType => Config.VarianceType ?? DdpmVarianceType.FixedSmall;

    /// <inheritdoc/>
    public int NumTrainTimesteps => Schedule.NumTrainTimesteps;

    /// <inheritdoc/>
    public double InitNoiseSigma => 1.0;

    /// <inheritdoc/>
    public IReadOnlyList<long> Timesteps => Array.AsReadOnly(_timesteps);

    /// <inheritdoc/>
    public int StepIndex { get; private set; }

    /// <summary>The step count given to <see cref="SetTimesteps"/>, or null while on the full training schedule.</summary>
    public int? NumInferenceSteps => _inferenceSteps;

    /// <inheritdoc/>
    public Tensor TimestepsTensor(Device? device = null) => tensor(_timesteps, device: device);

    /// <inheritdoc/>
    public void SetTimesteps(int steps)
    {
        _timesteps = TimestepSpacings.DdpmDdimChecked(Name, NumTrainTimesteps, steps, Config.TimestepSpacing, Config.StepsOffset);
        _inferenceSteps = steps;
        StepIndex = 0;
    }

    /// <summary>Returns to the full training schedule (t → t-1), as a scheduler that never had SetTimesteps.</summary>
    public void ResetToTrainingSchedule()
    {
        _timesteps = FullSchedule();
        _inferenceSteps = null;
        StepIndex = 0;
    }

    /// <inheritdoc/>
    public void Reset() => StepIndex = 0;

    /// <summary>The timestep a step from <paramref name="timestep"/> goes to (negative past the end).</summary>
    public long PreviousTimestep(long timestep) => timestep - NumTrainTimesteps / (_inferenceSteps ?? NumTrainTimesteps);

    /// <inheritdoc/>
    public Tensor ScaleModelInput(Tensor sample, long timestep) => sample;

    /// <summary>The posterior variance at <paramref name="timestep"/> for the fixed variance types (fixed_small: clamped at 1e-20).</summary>
    public float Variance(long timestep)
    {
        Schedule.CheckTimestep(timestep, nameof(timestep));
        var (_, currentBeta, posterior) = Coefficients(timestep);
        return VarianceType switch
        {
            DdpmVarianceType.FixedSmall or DdpmVarianceType.Learned or DdpmVarianceType.LearnedRange => posterior,
            // diffusers returns exp(0.5 * log(variance)) here: the standard deviation.
            DdpmVarianceType.FixedSmallLog => ScalarMath.Exp(0.5f * ScalarMath.Log(posterior)),
            DdpmVarianceType.FixedLarge => currentBeta,
            _ => throw UnsupportedVariance(),
        };
    }

    /// <summary>One DDPM step; the variance noise is drawn from <paramref name="generator"/> (or the default generator).</summary>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        using var scope = NewDisposeScope();
        var noise = timestep > 0
            ? randn(sample.shape, dtype: modelOutput.dtype, device: generator is null ? modelOutput.device : CPU, generator: generator).to(modelOutput.device)
            : null;
        var result = StepCore(modelOutput, timestep, sample, noise, out _);
        StepIndex++;
        return new SchedulerStepOutput(result.PrevSample.MoveToOuterDisposeScope(), result.PredOriginalSample!.MoveToOuterDisposeScope());
    }

    /// <summary>One DDPM step with explicit N(0, 1) variance noise (shaped like the sample; unused at t = 0).</summary>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, Tensor varianceNoise)
    {
        ArgumentNullException.ThrowIfNull(varianceNoise);
        using var scope = NewDisposeScope();
        var result = StepCore(modelOutput, timestep, sample, varianceNoise, out _);
        StepIndex++;
        return new SchedulerStepOutput(result.PrevSample.MoveToOuterDisposeScope(), result.PredOriginalSample!.MoveToOuterDisposeScope());
    }

    /// <summary>The deterministic part of a step: the posterior mean (and x0), without noise.</summary>
    public SchedulerStepOutput StepMean(Tensor modelOutput, long timestep, Tensor sample)
    {
        using var scope = NewDisposeScope();
        var result = StepCore(modelOutput, timestep, sample, null, out var mean);
        return new SchedulerStepOutput(mean.MoveToOuterDisposeScope(), result.PredOriginalSample!.MoveToOuterDisposeScope());
    }

    private SchedulerStepOutput StepCore(Tensor modelOutput, long timestep, Tensor sample, Tensor? noise, out Tensor mean)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        Schedule.CheckTimestep(timestep, nameof(timestep));
        bool learned = VarianceType is DdpmVarianceType.Learned or DdpmVarianceType.LearnedRange;
        Tensor? predictedVariance = null;
        if (learned && modelOutput.dim() >= 2 && sample.dim() >= 2 && modelOutput.shape[1] == 2 * sample.shape[1])
        {
            var halves = modelOutput.split(sample.shape[1], 1);
            modelOutput = halves[0];
            predictedVariance = halves[1];
        }
        else if (learned)
        {
            throw new ArgumentException($"{Name}: variance_type {SchedulerConfigKeys.ToDiffusersValue(VarianceType)} needs a model output with twice the sample's channels", nameof(modelOutput));
        }
        SampleOps.CheckSameShape(modelOutput, sample, Name);
        if (noise is not null && !noise.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"{Name}: variance noise must have the sample's shape", nameof(noise));
        if (VarianceType == DdpmVarianceType.FixedLargeLog) throw UnsupportedVariance();

        long prev = PreviousTimestep(timestep);
        float alphaProd = Schedule.AlphaCumprodAt(timestep);
        float alphaProdPrev = prev >= 0 ? Schedule.AlphaCumprodAt(prev) : 1f;
        float betaProd = 1f - alphaProd;
        float betaProdPrev = 1f - alphaProdPrev;
        float currentAlpha = alphaProd / alphaProdPrev;
        float currentBeta = 1f - currentAlpha;

        var (x0, _) = SampleOps.Predict(PredictionType, modelOutput, sample, MathF.Sqrt(alphaProd), MathF.Sqrt(betaProd));
        x0 = SampleOps.ClipOrThreshold(Config, x0, allowClip: true);

        float x0Coefficient = MathF.Sqrt(alphaProdPrev) * currentBeta / betaProd;
        float sampleCoefficient = MathF.Sqrt(currentAlpha) * betaProdPrev / betaProd;
        mean = x0.mul(Kept(x0Coefficient)).add(sample.mul(Kept(sampleCoefficient)), One);

        var prevSample = mean;
        if (timestep > 0 && noise is not null)
        {
            var (_, _, posterior) = Coefficients(timestep);
            Tensor scaledNoise = VarianceType switch
            {
                DdpmVarianceType.FixedSmall => noise.mul(Kept(MathF.Sqrt(posterior))),
                DdpmVarianceType.FixedSmallLog => noise.mul(Kept(ScalarMath.Exp(0.5f * ScalarMath.Log(posterior)))),
                DdpmVarianceType.FixedLarge => noise.mul(Kept(MathF.Sqrt(currentBeta))),
                DdpmVarianceType.Learned => predictedVariance!.sqrt().mul(noise),
                DdpmVarianceType.LearnedRange => LearnedRangeLogVariance(predictedVariance!, posterior, currentBeta).mul(Kept(0.5)).exp().mul(noise),
                _ => throw UnsupportedVariance(),
            };
            prevSample = mean.add(scaledNoise, One);
        }
        return new SchedulerStepOutput(prevSample, x0);
    }

    // frac * log(beta_t) + (1 - frac) * log(posterior variance), frac = (v + 1) / 2.
    private static Tensor LearnedRangeLogVariance(Tensor predicted, float posterior, float currentBeta)
    {
        float minLog = ScalarMath.Log(posterior), maxLog = ScalarMath.Log(currentBeta);
        var frac = predicted.add(Kept(1), One).div(Kept(2));
        return frac.mul(Kept(maxLog)).add(frac.neg().add(Kept(1), One).mul(Kept(minLog)), One);
    }

    private (float AlphaProdPrev, float CurrentBeta, float Posterior) Coefficients(long timestep)
    {
        long prev = PreviousTimestep(timestep);
        float alphaProd = Schedule.AlphaCumprodAt(timestep);
        float alphaProdPrev = prev >= 0 ? Schedule.AlphaCumprodAt(prev) : 1f;
        float currentBeta = 1f - alphaProd / alphaProdPrev;
        float posterior = Math.Max((1f - alphaProdPrev) / (1f - alphaProd) * currentBeta, 1e-20f);
        return (alphaProdPrev, currentBeta, posterior);
    }

    private Exception UnsupportedVariance() => Config.Error("variance_type",
        $"{SchedulerConfigKeys.ToDiffusersValue(VarianceType)} is not supported for sampling (the reference takes the square root of a log, which is NaN)");

    /// <inheritdoc/>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor timesteps) => Schedule.AddNoise(x0, noise, timesteps);

    /// <inheritdoc/>
    public Tensor GetVelocity(Tensor x0, Tensor noise, Tensor timesteps) => Schedule.GetVelocity(x0, noise, timesteps);

    /// <inheritdoc/>
    public Tensor GetTrainingTarget(Tensor x0, Tensor noise, Tensor timesteps) => TrainingTargets.For(Schedule, PredictionType, x0, noise, timesteps);

    /// <inheritdoc/>
    public Tensor SampleTimesteps(int batch, Generator? generator = null, Device? device = null) => TrainingTargets.SampleTimesteps(NumTrainTimesteps, batch, generator, device);

    /// <inheritdoc/>
    public IReadOnlyList<float> AlphasCumprod => Schedule.AlphasCumprod;

    /// <inheritdoc/>
    public Tensor PredictedNoise(Tensor modelOutput, Tensor sample, long timestep) =>
        TrainingTargets.PredictedNoise(Schedule, PredictionType, modelOutput, sample, timestep);

    /// <summary>Holds no tensors; nothing to release.</summary>
    public void Dispose()
    {
    }

    private long[] FullSchedule() => Enumerable.Range(0, Schedule.NumTrainTimesteps).Reverse().Select(i => (long)i).ToArray();
}
