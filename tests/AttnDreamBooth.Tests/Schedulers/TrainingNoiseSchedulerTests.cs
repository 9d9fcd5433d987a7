using AttnDreamBooth.Schedulers;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Schedulers;

/// <summary>The public training side of the schedulers (<see cref="DiffusionSamplers.ForTraining"/>), as a training loop of
/// one's own uses it.</summary>
public sealed class TrainingNoiseSchedulerTests
{
    private static SchedulerConfig Sd1 => SchedulerConfig.Load(Path.Combine(TestPaths.TinySd1, "scheduler", "scheduler_config.json"));

    [Theory]
    [InlineData("epsilon")]
    [InlineData("v_prediction")]
    [InlineData("sample")]
    public void ThePredictedNoiseOfAPerfectPredictionIsTheNoiseThatWasAdded(string predictionType)
    {
        using var scheduler = DiffusionSamplers.ForTraining(Sd1.With(new Dictionary<string, object?> { ["prediction_type"] = predictionType }));
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        var x0 = randn([3, 4, 8, 8], generator: generator);
        var noise = randn([3, 4, 8, 8], generator: generator);
        foreach (long t in new long[] { 0, 37, 500, scheduler.NumTrainTimesteps - 1 })
        {
            var steps = full([3], Kept(t), ScalarType.Int64);
            var noisy = scheduler.AddNoise(x0, noise, steps);
            var target = scheduler.GetTrainingTarget(x0, noise, steps);
            var predicted = scheduler.PredictedNoise(target, noisy, t);
            // x0 models divide by sqrt(1 - a_t), which is ~0.03 at t = 0: float rounding grows by that factor.
            double tolerance = predictionType == "sample" ? 2e-4 : 2e-5;
            Assert.True(predicted.allclose(noise, rtol: 0, atol: tolerance), $"{predictionType} at t = {t}: max |Δ| {predicted.sub(noise).abs().max().item<float>()}");
            Assert.NotSame(target, predicted);
        }
    }

    [Fact]
    public void AnEpsilonModelsOutputIsHandedBackAsANewHandle()
    {
        using var scheduler = DiffusionSamplers.ForTraining(Sd1);
        Assert.Equal(PredictionType.Epsilon, scheduler.PredictionType);
        using var output = randn([1, 4, 8, 8], generator: new Generator(3));
        using var sample = randn([1, 4, 8, 8], generator: new Generator(4));
        var predicted = scheduler.PredictedNoise(output, sample, 10);
        Assert.NotSame(output, predicted);
        predicted.Dispose();
        // Disposing the returned handle leaves the caller's tensor usable.
        Assert.Equal(4 * 8 * 8, output.NumberOfElements);
        Assert.False(float.IsNaN(output.sum().item<float>()));
    }

    [Fact]
    public void TimestepsOutsideTheTrainingScheduleAreRefused()
    {
        using var scheduler = DiffusionSamplers.ForTraining(Sd1);
        using var x = zeros([1, 4, 8, 8]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.PredictedNoise(x, x, scheduler.NumTrainTimesteps));
        Assert.Equal("timestep", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.PredictedNoise(x, x, -1));
    }

    [Fact]
    public void AlphasCumprodIsTheScheduleAddNoiseUses()
    {
        using var scheduler = DiffusionSamplers.ForTraining(Sd1);
        Assert.Equal(scheduler.NumTrainTimesteps, scheduler.AlphasCumprod.Count);
        using var x0 = ones([1, 1, 1, 1]);
        using var noise = zeros([1, 1, 1, 1]);
        foreach (int t in new[] { 0, 999 })
        {
            using var steps = full([1], Kept(t), ScalarType.Int64);
            using var noisy = scheduler.AddNoise(x0, noise, steps);
            Assert.Equal(MathF.Sqrt(scheduler.AlphasCumprod[t]), noisy.item<float>(), 6);
        }
        // A zero-terminal-SNR config trains on the rescaled schedule it is sampled with.
        using var rescaled = DiffusionSamplers.ForTraining(Sd1.With(new Dictionary<string, object?> { ["rescale_betas_zero_snr"] = true, ["prediction_type"] = "v_prediction" }));
        Assert.True(rescaled.AlphasCumprod[^1] < 1e-6f);
        Assert.True(scheduler.AlphasCumprod[^1] > 1e-4f);
    }
}
