using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// DDIM sampler (Song et al. 2021) as diffusers 0.24 <c>DDIMScheduler</c>: <see cref="SetTimesteps"/> with leading,
/// linspace or trailing spacing, <see cref="Step(Tensor, long, Tensor, double, bool, Generator?, Tensor?)"/> with eta,
/// x0 clipping or dynamic thresholding, <c>set_alpha_to_one</c> for the step past t = 0. Coefficients are float32
/// scalars computed like the reference's 0-dim tensors.
/// </summary>
internal sealed class DdimScheduler : IDiffusionSampler, ITrainingNoiseScheduler
{
    private const string Name = nameof(DdimScheduler);
    private long[] _timesteps = [];
    private HashSet<long> _timestepSet = [];
    private int? _inferenceSteps;

    private DdimScheduler(SchedulerConfig config)
    {
        Config = config;
        Schedule = NoiseSchedule.FromConfig(config);
        FinalAlphaCumprod = config.SetAlphaToOne ? 1f : Schedule.AlphaCumprodAt(0);
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>DDIMScheduler.from_config</c>).</summary>
    public static DdimScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new DdimScheduler(config.For(SchedulerClass.Ddim));
    }

    /// <inheritdoc/>
    public SchedulerConfig Config { get; }

    /// <inheritdoc/>
    public NoiseSchedule Schedule { get; }

    /// <inheritdoc cref="IDiffusionSampler.PredictionType"/>
    public PredictionType PredictionType => Config.PredictionType;

    /// <inheritdoc/>
    public int NumTrainTimesteps => Schedule.NumTrainTimesteps;

    /// <summary>The alpha product used after the last step: 1 with <c>set_alpha_to_one</c>, else alphas_cumprod[0].</summary>
    public float FinalAlphaCumprod { get; }

    /// <inheritdoc/>
    public double InitNoiseSigma => 1.0;

    /// <inheritdoc/>
    public IReadOnlyList<long> Timesteps => Array.AsReadOnly(_timesteps);

    /// <inheritdoc/>
    public int StepIndex { get; private set; }

    /// <summary>The step count given to <see cref="SetTimesteps"/>, or null before it.</summary>
    public int? NumInferenceSteps => _inferenceSteps;

    /// <inheritdoc/>
    public Tensor TimestepsTensor(Device? device = null) => tensor(_timesteps, device: device);

    /// <inheritdoc/>
    public void SetTimesteps(int steps)
    {
        _timesteps = TimestepSpacings.DdpmDdimChecked(Name, NumTrainTimesteps, steps, Config.TimestepSpacing, Config.StepsOffset);
        _timestepSet = [.. _timesteps];
        _inferenceSteps = steps;
        StepIndex = 0;
    }

    /// <inheritdoc/>
    public void Reset() => StepIndex = 0;

    /// <inheritdoc/>
    public Tensor ScaleModelInput(Tensor sample, long timestep) => sample;

    /// <summary>A deterministic DDIM step (eta = 0).</summary>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null) =>
        Step(modelOutput, timestep, sample, eta: 0.0, useClippedModelOutput: false, generator, varianceNoise: null);

    /// <summary>One DDIM step.</summary>
    /// <param name="modelOutput">Network output (epsilon, v or x0).</param>
    /// <param name="timestep">The current timestep; must be one of <see cref="Timesteps"/>.</param>
    /// <param name="sample">x_t.</param>
    /// <param name="eta">Weight of the stochastic term (0 = DDIM, 1 = DDPM-like).</param>
    /// <param name="useClippedModelOutput">Re-derive epsilon from the clipped x0, as diffusers' option of that name.</param>
    /// <param name="generator">Noise source when eta &gt; 0 and <paramref name="varianceNoise"/> is null.</param>
    /// <param name="varianceNoise">Explicit N(0, 1) noise for eta &gt; 0, shaped like the sample.</param>
    public SchedulerStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, double eta, bool useClippedModelOutput = false,
        Generator? generator = null, Tensor? varianceNoise = null)
    {
        if (_inferenceSteps is not { } steps)
            throw new SchedulerException(Name, "Step was called before SetTimesteps; call SetTimesteps(steps) first");
        if (!_timestepSet.Contains(timestep))
            throw SchedulerException.TimestepNotInSchedule(Name, timestep, $"is not in the schedule set by SetTimesteps({steps}) ({_timesteps[0]} … {_timesteps[^1]})");
        if (eta < 0 || double.IsNaN(eta)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must not be negative");
        SampleOps.CheckSameShape(modelOutput, sample, Name);
        if (varianceNoise is not null && !varianceNoise.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"{Name}: variance noise must have the sample's shape", nameof(varianceNoise));

        using var scope = NewDisposeScope();
        long prev = timestep - NumTrainTimesteps / steps;
        float alphaProd = Schedule.AlphaCumprodAt(timestep);
        float alphaProdPrev = prev >= 0 ? Schedule.AlphaCumprodAt(prev) : FinalAlphaCumprod;
        float betaProd = 1f - alphaProd;
        float sqrtAlpha = MathF.Sqrt(alphaProd), sqrtBeta = MathF.Sqrt(betaProd);

        var (x0, epsilon) = SampleOps.Predict(PredictionType, modelOutput, sample, sqrtAlpha, sqrtBeta);
        x0 = SampleOps.ClipOrThreshold(Config, x0, allowClip: true);

        float betaProdPrev = 1f - alphaProdPrev;
        float variance = betaProdPrev / betaProd * (1f - alphaProd / alphaProdPrev);
        float stdDev = (float)eta * MathF.Sqrt(variance);
        if (useClippedModelOutput) epsilon = sample.sub(x0.mul(Kept(sqrtAlpha))).div(Kept(sqrtBeta));

        var direction = epsilon.mul(Kept(MathF.Sqrt(1f - alphaProdPrev - stdDev * stdDev)));
        var prevSample = x0.mul(Kept(MathF.Sqrt(alphaProdPrev))).add(direction, One);
        if (eta > 0)
        {
            var noise = varianceNoise?.to_type(modelOutput.dtype).to(modelOutput.device)
                ?? randn(modelOutput.shape, dtype: modelOutput.dtype, device: generator is null ? modelOutput.device : CPU, generator: generator).to(modelOutput.device);
            prevSample = prevSample.add(noise.mul(Kept(stdDev)), One);
        }
        StepIndex++;
        return new SchedulerStepOutput(prevSample.MoveToOuterDisposeScope(), x0.MoveToOuterDisposeScope());
    }

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
}
