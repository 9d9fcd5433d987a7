using AttnDreamBooth.Shapes.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The pretraining's random streams draw what the shipped model's recipe drew (its seed, 20261204), and a
/// checkpoint of them continues each sequence exactly.</summary>
public sealed class PretrainingRandomTests
{
    // Recorded with the streams the shipped model was pretrained with (libtorch 2.10's CPU generator).
    [Fact]
    public void TheShippedRecipesSeedGivesTheStreamsItWasPretrainedWith()
    {
        using var streams = new PretrainingRandom(20261204);
        Assert.Equal([0.787627596396528, 0.1373945553849013, 0.21669882085462366], First(streams.Noise));
        Assert.Equal([0.6293534621909103, 0.19750196660979524, 0.7071725872515996], First(streams.Timesteps));
        Assert.Equal([0.25151897817146085, 0.903150896239738, 0.877298436923854], First(streams.DataOrder));
        Assert.Equal([0.3930282592295411, 0.674959091118082, 0.2306608541058286], First(streams.LatentSample));
    }

    [Fact]
    public void ASavedStateContinuesEverySequenceAndAMissingStreamIsRefused()
    {
        using var original = new PretrainingRandom(5);
        First(original.Noise);
        First(original.LatentSample);
        var state = original.SaveState();
        try
        {
            using var restored = new PretrainingRandom(99);
            restored.LoadState(state);
            foreach (var (a, b) in new[] { (original.Noise, restored.Noise), (original.Timesteps, restored.Timesteps),
                         (original.DataOrder, restored.DataOrder), (original.LatentSample, restored.LatentSample) })
                Assert.Equal(First(a), First(b));
            var partial = state.Where(e => e.Key != "rng.timesteps").ToDictionary(e => e.Key, e => e.Value);
            var e = Assert.Throws<ArgumentException>(() => restored.LoadState(partial));
            Assert.Contains("timesteps", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }

    private static double[] First(Generator generator)
    {
        using var draws = rand([3], generator: generator, dtype: ScalarType.Float64);
        return draws.data<double>().ToArray();
    }
}
