using AttnDreamBooth.Shapes.Pretraining;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>A warm restart of the U-Net phase (<see cref="PretrainingRecipe.UNetRestartStep"/>): its own schedule on each
/// side, a fresh optimizer at the restart, and a resume on either side of it that ends bit-identical.</summary>
[Collection(PretrainingCollection.Name)]
public sealed class UNetRestartTests
{
    private static PretrainingRecipe Restarting(long seed = 7, int steps = 4) => ShapesPretrainerTests.TinyRecipe(seed) with
    {
        UNetSteps = steps, UNetRestartStep = 3, UNetRestartLearningRate = 3e-4,
    };

    [Fact]
    public void EachSideOfTheRestartHasItsOwnWarmUpAndCosine()
    {
        var recipe = PretrainingRecipe.Default with
        {
            UNetSteps = 220, UNetLearningRate = 1.0, UNetRestartStep = 110, UNetRestartLearningRate = 0.5, WarmupSteps = 10, FinalLearningRateFraction = 0.1,
        };
        Assert.Equal(0.1, recipe.UNetLearningRateAt(0), 12);
        Assert.Equal(1.0, recipe.UNetLearningRateAt(10), 12);
        Assert.Equal(0.55, recipe.UNetLearningRateAt(60), 12);
        Assert.True(recipe.UNetLearningRateAt(109) < 0.11);
        // The restart warms up again, to its own peak, and decays over the remaining 110 steps.
        Assert.Equal(0.05, recipe.UNetLearningRateAt(110), 12);
        Assert.Equal(0.5, recipe.UNetLearningRateAt(120), 12);
        Assert.Equal(0.275, recipe.UNetLearningRateAt(170), 12);
        // Without a restart it is the phase's one schedule.
        var plain = recipe with { UNetRestartStep = 0, UNetRestartLearningRate = 0 };
        foreach (int step in new[] { 0, 10, 60, 110, 170, 219 }) Assert.Equal(plain.LearningRateAt(1.0, step, 220), plain.UNetLearningRateAt(step), 15);
    }

    [Fact]
    public void ARestartOutsideThePhaseOrWithoutItsRateIsRefusedAndNoRestartLeavesTheJsonAsItWas()
    {
        var tiny = ShapesPretrainerTests.TinyRecipe();
        Assert.Contains("unet_restart_step", Assert.Throws<ArgumentException>(() => (tiny with { UNetRestartStep = 3, UNetRestartLearningRate = 1e-4 }).Validate()).Message);
        Assert.Contains("unet_restart_step", Assert.Throws<ArgumentException>(() => (tiny with { UNetRestartStep = -1, UNetRestartLearningRate = 1e-4 }).Validate()).Message);
        Assert.Contains("unet_restart_learning_rate", Assert.Throws<ArgumentException>(() => (tiny with { UNetRestartStep = 2 }).Validate()).Message);
        Assert.Contains("unet_restart_learning_rate", Assert.Throws<ArgumentException>(() => (tiny with { UNetRestartLearningRate = 1e-4 }).Validate()).Message);
        Assert.DoesNotContain("unet_restart", PretrainingRecipe.Default.ToJson());
        var restarting = Restarting();
        restarting.Validate();
        var read = PretrainingRecipe.FromJson(restarting.ToJson());
        Assert.Equal((3, 3e-4), (read.UNetRestartStep, read.UNetRestartLearningRate));
        Assert.Equal(restarting.Fingerprint(), read.Fingerprint());
        Assert.NotEqual((restarting with { UNetRestartStep = 0, UNetRestartLearningRate = 0 }).Fingerprint(), restarting.Fingerprint());
    }

    [Fact]
    public async Task TheRestartStartsAFreshOptimizerAtItsOwnRate()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = Restarting();
        var reports = new List<PretrainingProgress>();
        var result = await ShapesPretrainerTests.Trainer(recipe, temp.File("ck")).RunAsync(new InlineProgress<PretrainingProgress>(reports.Add));
        var unet = reports.Where(r => r.Phase == PretrainingPhase.UNet).ToList();
        Assert.Equal(Enumerable.Range(0, 4).Select(recipe.UNetLearningRateAt), unet.Select(r => r.LearningRate));
        Assert.Equal(3e-4, unet[3].LearningRate, 15);

        // One step after a reset, AdamW's moments are (1 − β1)·g and (1 − β2)·g², so m² / v = (1 − β1)² / (1 − β2)
        // wherever the gradient is not zero; moments carried over from the three steps before would not be.
        var tensors = PretrainingCheckpoint.ReadTensors(result.CheckpointPath);
        double expected = Math.Pow(1 - recipe.Optimizer.Beta1, 2) / (1 - recipe.Optimizer.Beta2);
        int checkedTensors = 0;
        foreach (var (key, m) in tensors.Where(p => p.Key.StartsWith("optimizer.", StringComparison.Ordinal) && p.Key.EndsWith(".exp_avg", StringComparison.Ordinal)))
        {
            using var scope = torch.NewDisposeScope();
            var v = tensors[key + "_sq"];
            var nonzero = v.gt(Kept(1e-20));
            if (nonzero.sum().item<long>() == 0) continue;
            var ratio = m.mul(m).masked_select(nonzero).div(v.masked_select(nonzero));
            Assert.True(ratio.sub(Kept(expected)).abs().max().item<float>() < 1e-3 * expected, $"{key}: m²/v is not that of one step");
            checkedTensors++;
        }
        Assert.True(checkedTensors > 10, $"only {checkedTensors} moment tensors checked");
    }

    [Theory]
    [InlineData(5)] // before the restart (2 of 5 U-Net steps done)
    [InlineData(6)] // at it: the checkpoint holds the first optimizer, which the resumed run must replace
    [InlineData(7)] // after it: the checkpoint holds the restarted optimizer and its step count
    public async Task AnInterruptedRunResumesOnEitherSideOfTheRestartBitIdentically(int stopAfter)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = Restarting(seed: 9, steps: 5);
        var straight = await ShapesPretrainerTests.Trainer(recipe, temp.File("straight")).RunAsync();

        await ShapesPretrainerTests.InterruptAfterAsync(recipe, temp.File("resumed"), stopAfter);
        var (_, stopped) = PretrainingCheckpoint.ReadState(temp.File("resumed"));
        Assert.Equal(stopAfter - recipe.VaeSteps, stopped.UNetLosses.Count);

        var resumed = await ShapesPretrainerTests.Trainer(recipe, temp.File("resumed"), resume: true).RunAsync();
        ShapesPretrainerTests.AssertSameRun(straight, resumed);
    }
}
