using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// Euler (Karras et al. 2022, algorithm 2 without churn) as diffusers 0.24 <c>EulerDiscreteScheduler</c>:
/// x' = x + (x - x0) / sigma * (sigma_next - sigma). Karras sigmas (with <c>sigma_min</c> / <c>sigma_max</c>), leading,
/// linspace or trailing spacing, <c>timestep_type</c> continuous for v-prediction. Deterministic: unlike the reference,
/// it draws no (unused) noise from a generator passed to <see cref="KDiffusionSampler.Step(Tensor, double, Tensor, Generator?)"/>.
/// </summary>
internal sealed class EulerDiscreteScheduler : KDiffusionSampler
{
    private EulerDiscreteScheduler(SchedulerConfig config)
        : base(config, nameof(EulerDiscreteScheduler))
    {
        if (config.InterpolationType == SigmaInterpolation.LogLinear)
            throw config.Error("interpolation_type", "log_linear is not supported (diffusers 0.24 produces ascending sigmas with it); use linear");
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>EulerDiscreteScheduler.from_config</c>).</summary>
    public static EulerDiscreteScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new EulerDiscreteScheduler(config.For(SchedulerClass.EulerDiscrete));
    }

    private protected override (double? Min, double? Max) KarrasBounds => (Config.SigmaMin, Config.SigmaMax);

    private protected override double KarrasTimestep(double t) => (float)t;

    private protected override (double[] Timesteps, float[] Sigmas) Arrange(double[] timesteps, double[] sigmas)
    {
        var (t, s) = base.Arrange(timesteps, sigmas);
        // Continuous-time v models take 0.25 log(sigma) as their timestep.
        if (Config.TimestepType == TimestepType.Continuous && PredictionType == PredictionType.VPrediction)
            t = s.Take(sigmas.Length).Select(sigma => (double)(0.25f * MathF.Log(sigma))).ToArray();
        return (t, s);
    }

    private protected override (Tensor Prev, Tensor? X0) StepCore(Tensor modelOutput, Tensor sample, int index, Generator? generator, Tensor? noise)
    {
        float sigma = Sigmas[index];
        var x0 = PredictX0(modelOutput, sample, sigma);
        var derivative = sample.sub(x0).div(Kept(sigma));
        return (sample.add(derivative.mul(Kept(Sigmas[index + 1] - sigma)), One), x0);
    }
}
