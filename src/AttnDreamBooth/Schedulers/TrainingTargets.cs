using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Schedulers;

/// <summary>Training-side helpers shared by the schedulers.</summary>
internal static class TrainingTargets
{
    public static Tensor For(NoiseSchedule schedule, PredictionType type, Tensor x0, Tensor noise, Tensor timesteps) => type switch
    {
        PredictionType.Epsilon => CheckedAlias(noise, x0),
        PredictionType.VPrediction => schedule.GetVelocity(x0, noise, timesteps),
        PredictionType.Sample => CheckedAlias(x0, noise),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown prediction type"),
    };

    public static Tensor SampleTimesteps(int trainSteps, int batch, Generator? generator, Device? device)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "the batch size must be at least 1");
        // A seeded generator lives on the CPU: draw there, then move, so the same seed gives the same timesteps on any device.
        var t = randint(0, trainSteps, [batch], dtype: ScalarType.Int64, device: generator is null ? device : CPU, generator: generator);
        return device is null || generator is null ? t : t.to(device);
    }

    public static Tensor PredictedNoise(NoiseSchedule schedule, PredictionType type, Tensor modelOutput, Tensor sample, long timestep)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        if (timestep < 0 || timestep >= schedule.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(timestep), timestep, $"must be in [0, {schedule.NumTrainTimesteps})");
        float alpha = schedule.AlphasCumprod[(int)timestep];
        using var scope = NewDisposeScope();
        var (_, epsilon) = SampleOps.Predict(type, modelOutput, sample, MathF.Sqrt(alpha), MathF.Sqrt(1 - alpha));
        // An epsilon model's output is its own noise estimate: hand out a new handle, not the caller's tensor.
        return (ReferenceEquals(epsilon, modelOutput) ? epsilon.alias() : epsilon).MoveToOuterDisposeScope();
    }

    private static Tensor CheckedAlias(Tensor target, Tensor other)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(other);
        if (!target.shape.SequenceEqual(other.shape))
            throw new ArgumentException($"x0 and noise must have the same shape, found [{string.Join(", ", other.shape)}] and [{string.Join(", ", target.shape)}]");
        return target.alias();
    }
}
