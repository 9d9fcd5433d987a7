using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// Heun's second-order method (Karras et al. 2022, algorithm 1) as diffusers 0.24 <c>HeunDiscreteScheduler</c>: two
/// model calls per step, on timesteps t0, t1, t1, …, t_{N-1}, t_{N-1} (2N - 1 calls). Even calls take an Euler step and
/// remember it; odd calls correct it with the average of both derivatives. The last call is a plain Euler step to 0.
/// <c>clip_sample</c> clamps x0 (default off). Karras sigmas, leading, linspace or trailing spacing.
/// </summary>
internal sealed class HeunDiscreteScheduler : KDiffusionSampler
{
    private Tensor? _derivative;
    private Tensor? _sample;
    private float _dt;

    private HeunDiscreteScheduler(SchedulerConfig config)
        : base(config, nameof(HeunDiscreteScheduler))
    {
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>HeunDiscreteScheduler.from_config</c>).</summary>
    public static HeunDiscreteScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new HeunDiscreteScheduler(config.For(SchedulerClass.HeunDiscrete));
    }

    /// <summary>Whether the next call is the first (Euler) stage of a step.</summary>
    public bool StateInFirstOrder => _sample is null;

    private protected override (double[] Timesteps, float[] Sigmas) Arrange(double[] timesteps, double[] sigmas)
    {
        var s = sigmas.Select(v => (float)v).ToArray();
        var t = new List<double> { timesteps[0] };
        var sig = new List<float> { s[0] };
        for (int k = 1; k < s.Length; k++)
        {
            sig.Add(s[k]);
            sig.Add(s[k]);
            t.Add(timesteps[k]);
            t.Add(timesteps[k]);
        }
        sig.Add(0f);
        return ([.. t], [.. sig]);
    }

    /// <inheritdoc/>
    public override void Reset()
    {
        _derivative?.Dispose();
        _sample?.Dispose();
        _derivative = null;
        _sample = null;
        base.Reset();
    }

    private protected override (Tensor Prev, Tensor? X0) StepCore(Tensor modelOutput, Tensor sample, int index, Generator? generator, Tensor? noise)
    {
        bool first = StateInFirstOrder;
        float sigma = first ? Sigmas[index] : Sigmas[index - 1];
        float next = first ? Sigmas[index + 1] : Sigmas[index];
        var x0 = PredictX0(modelOutput, sample, first ? sigma : next);
        if (Config.ClipSample) x0 = x0.clamp(Kept(-Config.ClipSampleRange), Kept(Config.ClipSampleRange));
        if (first)
        {
            var derivative = sample.sub(x0).div(Kept(sigma));
            _dt = next - sigma;
            _derivative = derivative.alias().DetachFromDisposeScope();
            _sample = sample.alias().DetachFromDisposeScope();
            return (sample.add(derivative.mul(Kept(_dt)), One), null);
        }
        var average = _derivative!.add(sample.sub(x0).div(Kept(next)), One).div(Kept(2f));
        var prev = _sample!.add(average.mul(Kept(_dt)), One);
        _derivative.Dispose();
        _sample.Dispose();
        _derivative = null;
        _sample = null;
        return (prev, null);
    }
}
