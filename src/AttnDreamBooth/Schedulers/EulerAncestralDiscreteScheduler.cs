using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// Euler ancestral as diffusers 0.24 <c>EulerAncestralDiscreteScheduler</c>: an Euler step down to
/// sigma_down = sqrt(s_to^2 - sigma_up^2), then fresh noise times sigma_up = sqrt(s_to^2 (s_from^2 - s_to^2) / s_from^2).
/// The noise of step i is the i-th <c>randn(shape, generator)</c> of the generator passed to <c>Step</c> (on the CPU,
/// so a seed gives the same images on any device), drawn at every step including the last, where sigma_up is 0; or pass
/// it explicitly with <see cref="Step(Tensor, double, Tensor, Tensor)"/>. No Karras sigmas and no <c>sample</c>
/// prediction, as in the reference.
/// </summary>
internal sealed class EulerAncestralDiscreteScheduler : KDiffusionSampler
{
    private EulerAncestralDiscreteScheduler(SchedulerConfig config)
        : base(config, nameof(EulerAncestralDiscreteScheduler))
    {
        if (config.PredictionType == PredictionType.Sample)
            throw config.Error("prediction_type", "sample is not supported by Euler ancestral (diffusers 0.24 does not implement it); use epsilon or v_prediction");
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>EulerAncestralDiscreteScheduler.from_config</c>;
    /// <c>use_karras_sigmas</c> is not one of its arguments and has no effect).</summary>
    public static EulerAncestralDiscreteScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new EulerAncestralDiscreteScheduler(config.For(SchedulerClass.EulerAncestralDiscrete));
    }

    private protected override bool TakesKarrasSigmas => false;

    /// <summary>One step with explicit N(0, 1) noise shaped like the sample (instead of drawing it).</summary>
    public SchedulerStepOutput Step(Tensor modelOutput, double timestep, Tensor sample, Tensor noise)
    {
        ArgumentNullException.ThrowIfNull(noise);
        if (sample is not null && !noise.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"{Name}: the noise must have the sample's shape", nameof(noise));
        return StepWith(modelOutput, timestep, sample!, null, noise);
    }

    private protected override (Tensor Prev, Tensor? X0) StepCore(Tensor modelOutput, Tensor sample, int index, Generator? generator, Tensor? noise)
    {
        float from = Sigmas[index], to = Sigmas[index + 1];
        var x0 = PredictX0(modelOutput, sample, from);
        float up = MathF.Sqrt(to * to * (from * from - to * to) / (from * from));
        float down = MathF.Sqrt(to * to - up * up);
        var prev = sample.add(sample.sub(x0).div(Kept(from)).mul(Kept(down - from)), One);
        noise = noise?.to(modelOutput.dtype, modelOutput.device)
            ?? randn(modelOutput.shape, dtype: modelOutput.dtype, device: generator is null ? modelOutput.device : CPU, generator: generator).to(modelOutput.device);
        return (prev.add(noise.mul(Kept(up)), One), x0);
    }
}
