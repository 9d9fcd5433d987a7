using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// KDPM2 (k-diffusion's DPM-Solver-2 style sampler) as diffusers 0.24 <c>KDPM2DiscreteScheduler</c>: each step first
/// evaluates the model at the geometric mid-sigma q = sqrt(s_i s_{i+1}) (an Euler step to q), then completes the step
/// from the remembered sample with that midpoint derivative. Calls alternate t0, tq1, t1, tq2, …, t_{N-1} (2N - 1 calls;
/// the interpolated timesteps are fractional). Karras sigmas round the timesteps to integers, as the reference does.
/// No <c>sample</c> prediction (not implemented in the reference).
/// </summary>
internal sealed class KDpm2DiscreteScheduler : KDiffusionSampler
{
    private float[] _sigmasInterpol = [];
    private Tensor? _sample;

    private KDpm2DiscreteScheduler(SchedulerConfig config)
        : base(config, nameof(KDpm2DiscreteScheduler))
    {
        if (config.PredictionType == PredictionType.Sample)
            throw config.Error("prediction_type", "sample is not supported by KDPM2 (diffusers 0.24 does not implement it); use epsilon or v_prediction");
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>KDPM2DiscreteScheduler.from_config</c>).</summary>
    public static KDpm2DiscreteScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new KDpm2DiscreteScheduler(config.For(SchedulerClass.KDpm2Discrete));
    }

    /// <summary>The interpolated sigmas, aligned with <see cref="KDiffusionSampler.Sigmas"/> (diffusers' <c>sigmas_interpol</c>;
    /// entry 0 is unused and NaN there, 0 here).</summary>
    public IReadOnlyList<float> SigmasInterpol => Array.AsReadOnly(_sigmasInterpol);

    /// <summary>Whether the next call is the first stage of a step.</summary>
    public bool StateInFirstOrder => _sample is null;

    private protected override double KarrasTimestep(double t) => Math.Round(t, MidpointRounding.ToEven);

    private protected override (double[] Timesteps, float[] Sigmas) Arrange(double[] timesteps, double[] sigmas)
    {
        int n = sigmas.Length;
        var s = sigmas.Select(v => (float)v).Append(0f).ToArray();
        // Geometric means in float32 as torch computes them: exp(lerp(log s_k, log s_{k-1}, 0.5)).
        var q = new float[n + 1];
        for (int k = 1; k <= n; k++)
        {
            float a = ScalarMath.Log(s[k]), b = ScalarMath.Log(s[k - 1]);
            q[k] = s[k] == 0f ? 0f : ScalarMath.Exp(b - (b - a) * 0.5f);
        }
        var sig = new List<float> { s[0] };
        var interpol = new List<float> { q[0] };
        for (int k = 1; k <= n; k++)
        {
            sig.Add(s[k]);
            sig.Add(s[k]);
            interpol.Add(q[k]);
            interpol.Add(q[k]);
        }
        sig.Add(s[n]);
        interpol.Add(q[n]);
        _sigmasInterpol = [.. interpol];
        var t = new List<double> { timesteps[0] };
        for (int k = 1; k < n; k++)
        {
            t.Add(Table.TimestepOf(q[k]));
            t.Add(timesteps[k]);
        }
        return ([.. t], [.. sig]);
    }

    /// <inheritdoc/>
    public override void Reset()
    {
        _sample?.Dispose();
        _sample = null;
        base.Reset();
    }

    private protected override float InputSigma(int index) => StateInFirstOrder ? Sigmas[index] : _sigmasInterpol[index];

    private protected override (Tensor Prev, Tensor? X0) StepCore(Tensor modelOutput, Tensor sample, int index, Generator? generator, Tensor? noise)
    {
        if (StateInFirstOrder)
        {
            float sigma = Sigmas[index], interpol = _sigmasInterpol[index + 1];
            var derivative = sample.sub(PredictX0(modelOutput, sample, sigma)).div(Kept(sigma));
            _sample = sample.alias().DetachFromDisposeScope();
            return (sample.add(derivative.mul(Kept(interpol - sigma)), One), null);
        }
        float from = Sigmas[index - 1], mid = _sigmasInterpol[index], to = Sigmas[index];
        var midDerivative = sample.sub(PredictX0(modelOutput, sample, mid)).div(Kept(mid));
        var prev = _sample!.add(midDerivative.mul(Kept(to - from)), One);
        _sample.Dispose();
        _sample = null;
        return (prev, null);
    }
}
