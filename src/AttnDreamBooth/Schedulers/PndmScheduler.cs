using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// PNDM / PLMS (Liu et al. 2022) as diffusers 0.24 <c>PNDMScheduler</c>, the class named by the Stable Diffusion 1.x
/// configs. With <c>skip_prk_steps</c> (the SD setting) it is PLMS: N + 1 model calls (the second timestep repeated),
/// a linear multistep combination of up to four noise predictions fed to the transfer formula (9) of the paper. Without
/// it, twelve pseudo Runge-Kutta calls on the four noisiest timesteps come first (N + 9 calls). The step to the previous
/// timestep always spans T // N, whatever the spacing (as the reference). <c>set_alpha_to_one</c> chooses the alpha
/// product past t = 0. Epsilon and v-prediction (no <c>sample</c> prediction, as in the reference).
/// </summary>
internal sealed class PndmScheduler : IDiffusionSampler
{
    private const string Name = nameof(PndmScheduler);
    private const int PndmOrder = 4;
    private long[] _timesteps = [];
    private int _prkCount;
    private int _inferenceSteps;
    private readonly List<Tensor> _ets = [];
    private Tensor? _curSample;
    private Tensor? _curModelOutput;
    private bool _disposed;

    private PndmScheduler(SchedulerConfig config)
    {
        if (config.PredictionType == PredictionType.Sample)
            throw config.Error("prediction_type", "sample is not supported by PNDM (diffusers 0.24 refuses it); use epsilon or v_prediction");
        Config = config;
        Schedule = NoiseSchedule.FromConfig(config);
        FinalAlphaCumprod = config.SetAlphaToOne ? 1f : Schedule.AlphaCumprodAt(0);
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>PNDMScheduler.from_config</c>).</summary>
    public static PndmScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new PndmScheduler(config.For(SchedulerClass.Pndm));
    }

    /// <inheritdoc/>
    public SchedulerConfig Config { get; }

    /// <inheritdoc/>
    public NoiseSchedule Schedule { get; }

    /// <inheritdoc/>
    public PredictionType PredictionType => Config.PredictionType;

    /// <summary>The alpha product used past t = 0: 1 with <c>set_alpha_to_one</c>, else alphas_cumprod[0].</summary>
    public float FinalAlphaCumprod { get; }

    /// <inheritdoc/>
    public double InitNoiseSigma => 1.0;

    /// <inheritdoc/>
    public IReadOnlyList<long> Timesteps => Array.AsReadOnly(_timesteps);

    /// <summary>How many of the first <see cref="Timesteps"/> are pseudo Runge-Kutta calls (0 with <c>skip_prk_steps</c>, else 12).</summary>
    public int PrkSteps => _prkCount;

    /// <inheritdoc/>
    public int StepIndex { get; private set; }

    /// <inheritdoc/>
    public Tensor TimestepsTensor(Device? device = null) => tensor(_timesteps, device: device);

    /// <inheritdoc/>
    public void SetTimesteps(int steps)
    {
        int trainSteps = Schedule.NumTrainTimesteps;
        if (steps < 1 || steps > trainSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: the number of inference steps must lie in [1, {trainSteps}] (num_train_timesteps)");
        if (!Config.SkipPrkSteps && steps < PndmOrder)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: without skip_prk_steps at least {PndmOrder} steps are needed");
        // Ascending base list, then arranged as the reference does.
        long[] u = TimestepSpacings.DdpmDdim(trainSteps, steps, Config.TimestepSpacing, Config.StepsOffset).Reverse().ToArray();
        foreach (long t in u)
        {
            if (t < 0 || t >= trainSteps)
                throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{Name}: with steps_offset {Config.StepsOffset} and {Config.TimestepSpacing} spacing, {steps} steps give timestep {t}, outside [0, {trainSteps})");
        }
        List<long> timesteps;
        if (Config.SkipPrkSteps)
        {
            // u[N-1], u[N-2], u[N-2], u[N-3], …, u[0]: the second timestep is evaluated twice.
            timesteps = [.. u[..^1].Append(u[^2]).Append(u[^1]).Reverse()];
            _prkCount = 0;
        }
        else
        {
            long half = trainSteps / steps / 2;
            var last = u[^PndmOrder..];
            var pairs = last.SelectMany(v => new[] { v, v + half }).ToArray();   // v0, v0+h, v1, v1+h, …
            var doubled = pairs[..^1].SelectMany(v => new[] { v, v }).ToArray();
            var prk = doubled[1..^1].Reverse().ToList();
            timesteps = [.. prk, .. u[..^3].Reverse()];
            _prkCount = prk.Count;
        }
        _timesteps = [.. timesteps];
        _inferenceSteps = steps;
        Reset();
    }

    /// <inheritdoc/>
    public void Reset()
    {
        foreach (var e in _ets) e.Dispose();
        _ets.Clear();
        _curSample?.Dispose();
        _curSample = null;
        _curModelOutput?.Dispose();
        _curModelOutput = null;
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
        if (_timesteps[StepIndex] != timestep)
            throw SchedulerException.TimestepNotInSchedule(Name, timestep, $"was passed at step {StepIndex}, whose timestep is {_timesteps[StepIndex]}; steps must follow Timesteps in order");
        SampleOps.CheckSameShape(modelOutput, sample, Name);
        using var scope = NewDisposeScope();
        var prev = StepIndex < _prkCount ? StepPrk(modelOutput, timestep, sample) : StepPlms(modelOutput, timestep, sample);
        StepIndex++;
        return new SchedulerStepOutput(prev.MoveToOuterDisposeScope(), null);
    }

    private Tensor StepPrk(Tensor modelOutput, long timestep, Tensor sample)
    {
        int counter = StepIndex;
        long diff = counter % 2 == 1 ? 0 : Schedule.NumTrainTimesteps / _inferenceSteps / 2;
        long prevTimestep = timestep - diff;
        long groupTimestep = _timesteps[counter / 4 * 4];
        Tensor e;
        switch (counter % 4)
        {
            case 0:
                Accumulate(modelOutput.mul(Kept(1.0 / 6)));
                _ets.Add(modelOutput.alias().DetachFromDisposeScope());
                _curSample?.Dispose();
                _curSample = sample.alias().DetachFromDisposeScope();
                e = modelOutput;
                break;
            case 1:
            case 2:
                Accumulate(modelOutput.mul(Kept(1.0 / 3)));
                e = modelOutput;
                break;
            default:
                e = _curModelOutput!.add(modelOutput.mul(Kept(1.0 / 6)), One);
                _curModelOutput.Dispose();
                _curModelOutput = null;
                break;
        }
        return Transfer(_curSample ?? sample, groupTimestep, prevTimestep, e);
    }

    private void Accumulate(Tensor term)
    {
        var sum = _curModelOutput is null ? term : _curModelOutput.add(term, One);
        _curModelOutput?.Dispose();
        _curModelOutput = sum.DetachFromDisposeScope();
    }

    private Tensor StepPlms(Tensor modelOutput, long timestep, Tensor sample)
    {
        if (!Config.SkipPrkSteps && _ets.Count < 3)
            throw new SchedulerException(Name, "PLMS steps need the pseudo Runge-Kutta steps first");
        int counter = StepIndex;
        long ratio = Schedule.NumTrainTimesteps / _inferenceSteps;
        long prevTimestep = timestep - ratio;
        if (counter != 1)
        {
            while (_ets.Count > 3)
            {
                _ets[0].Dispose();
                _ets.RemoveAt(0);
            }
            _ets.Add(modelOutput.alias().DetachFromDisposeScope());
        }
        else
        {
            prevTimestep = timestep;
            timestep += ratio;
        }

        Tensor e;
        Tensor? stored = null;
        if (_ets.Count == 1 && counter == 0)
        {
            e = modelOutput;
            _curSample?.Dispose();
            _curSample = sample.alias().DetachFromDisposeScope();
        }
        else if (_ets.Count == 1 && counter == 1)
        {
            // The repeated timestep: average the two predictions and redo the first step from its start.
            e = modelOutput.add(_ets[^1], One).div(Kept(2));
            stored = _curSample!;
            sample = stored;
            _curSample = null;
        }
        else if (_ets.Count == 2)
        {
            e = _ets[^1].mul(Kept(3)).sub(_ets[^2]).div(Kept(2));
        }
        else if (_ets.Count == 3)
        {
            e = _ets[^1].mul(Kept(23)).sub(_ets[^2].mul(Kept(16))).add(_ets[^3].mul(Kept(5)), One).div(Kept(12));
        }
        else
        {
            e = _ets[^1].mul(Kept(55)).sub(_ets[^2].mul(Kept(59))).add(_ets[^3].mul(Kept(37)), One).sub(_ets[^4].mul(Kept(9))).mul(Kept(1.0 / 24));
        }
        var result = Transfer(sample, timestep, prevTimestep, e);
        stored?.Dispose();
        return result;
    }

    // Formula (9): x_{t'} = sqrt(a'/a) x - (a' - a) e / (a sqrt(1 - a') + sqrt(a (1 - a) a')), float32 scalars.
    private Tensor Transfer(Tensor sample, long timestep, long prevTimestep, Tensor modelOutput)
    {
        float alpha = Schedule.AlphaCumprodAt(timestep);
        float alphaPrev = prevTimestep >= 0 ? Schedule.AlphaCumprodAt(prevTimestep) : FinalAlphaCumprod;
        float beta = 1f - alpha, betaPrev = 1f - alphaPrev;
        if (PredictionType == PredictionType.VPrediction)
            modelOutput = modelOutput.mul(Kept(MathF.Sqrt(alpha))).add(sample.mul(Kept(MathF.Sqrt(beta))), One);
        float sampleCoefficient = MathF.Sqrt(alphaPrev / alpha);
        float denominator = alpha * MathF.Sqrt(betaPrev) + MathF.Sqrt(alpha * beta * alphaPrev);
        return sample.mul(Kept(sampleCoefficient)).sub(modelOutput.mul(Kept(alphaPrev - alpha)).div(Kept(denominator)));
    }

    /// <summary>The forward process (DDPM's formula): sqrt(a_t) x0 + sqrt(1 - a_t) noise for any training timestep.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor timesteps) => Schedule.AddNoise(x0, noise, timesteps);

    /// <summary>Releases the stored model outputs.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Reset();
        _disposed = true;
    }
}
