using AttnDreamBooth.Shapes.Pretraining;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The text encoder's own share of the U-Net phase's learning rate (<see cref="PretrainingRecipe.TextEncoderLearningRateScale"/>).</summary>
[Collection(PretrainingCollection.Name)]
public sealed class TextEncoderLearningRateTests
{
    [Fact]
    public void TheScaleIsValidatedAndWrittenOnlyWhenSet()
    {
        var plain = ShapesPretrainerTests.TinyRecipe();
        var scaled = plain with { TextEncoderLearningRateScale = 0.3 };
        Assert.DoesNotContain("text_encoder_learning_rate_scale", plain.ToJson());
        Assert.Contains("\"text_encoder_learning_rate_scale\": 0.3", scaled.ToJson());
        Assert.Equal(scaled.Fingerprint(), PretrainingRecipe.FromJson(scaled.ToJson()).Fingerprint());
        Assert.NotEqual(scaled.Fingerprint(), plain.Fingerprint());
        Assert.Null(PretrainingRecipe.FromJson(plain.ToJson()).TextEncoderLearningRateScale);
        foreach (double bad in new[] { 0, -0.5, double.NaN, double.PositiveInfinity, 101 })
        {
            var ex = Assert.Throws<ArgumentException>(() => (plain with { TextEncoderLearningRateScale = bad }).Validate());
            Assert.Contains("text_encoder_learning_rate_scale", ex.Message);
        }
    }

    [Fact]
    public async Task AScaledTextEncoderMovesByItsShareWhileTheUNetStepsAsWithoutAScaleAndAScaleOfOneChangesNothing()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var plain = ShapesPretrainerTests.TinyRecipe(seed: 12) with { VaeSteps = 1, UNetSteps = 1 };
        var first = await ShapesPretrainerTests.Trainer(plain with { UNetSteps = 0 }, temp.File("start")).RunAsync();
        var same = await ShapesPretrainerTests.Trainer(plain, temp.File("plain")).RunAsync();
        var one = await ShapesPretrainerTests.Trainer(plain with { TextEncoderLearningRateScale = 1.0 }, temp.File("one")).RunAsync();
        var quarter = await ShapesPretrainerTests.Trainer(plain with { TextEncoderLearningRateScale = 0.25 }, temp.File("quarter")).RunAsync();

        var before = PretrainingCheckpoint.ReadTensors(first.CheckpointPath);
        var afterPlain = PretrainingCheckpoint.ReadTensors(same.CheckpointPath);
        var afterOne = PretrainingCheckpoint.ReadTensors(one.CheckpointPath);
        var afterQuarter = PretrainingCheckpoint.ReadTensors(quarter.CheckpointPath);
        int textEncoderTensors = 0;
        foreach (var (key, start) in before)
        {
            if (key.StartsWith("optimizer.", StringComparison.Ordinal) || !(key.StartsWith(ShapesNetworks.TextEncoderPrefix, StringComparison.Ordinal)
                || key.StartsWith(ShapesNetworks.UNetPrefix, StringComparison.Ordinal))) continue;
            // Two optimizers at scale 1 are one optimizer: every element is updated on its own.
            Assert.True(afterPlain[key].equal(afterOne[key]).all().item<bool>(), $"{key}: a scale of 1 changed the step");
            if (key.StartsWith(ShapesNetworks.UNetPrefix, StringComparison.Ordinal))
            {
                // The first step's gradients and their joint clipping do not depend on the text encoder's rate.
                Assert.True(afterPlain[key].equal(afterQuarter[key]).all().item<bool>(), $"{key}: the U-Net's step changed with the text encoder's rate");
                continue;
            }
            using var full = afterPlain[key].sub(start);
            using var scaled = afterQuarter[key].sub(start);
            double fullNorm = full.norm().item<float>();
            if (fullNorm == 0) continue;
            textEncoderTensors++;
            // AdamW's first step is linear in the rate (no warm-up here): a quarter of the move, to float rounding of the weights.
            using var residual = scaled.sub(full.mul(Kept(0.25)));
            double error = residual.norm().item<float>() / (0.25 * fullNorm);
            Assert.True(error < 0.02, $"{key}: the scaled move is off a quarter of the full one by {error:P2}");
        }
        Assert.True(textEncoderTensors > 10, $"only {textEncoderTensors} text-encoder tensors moved");
    }

    [Fact]
    public async Task ARunWithAScaledTextEncoderAndARestartResumesBitIdentically()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = ShapesPretrainerTests.TinyRecipe(seed: 13) with
        {
            VaeSteps = 1, UNetSteps = 4, UNetRestartStep = 2, UNetRestartLearningRate = 3e-4, TextEncoderLearningRateScale = 0.3,
        };
        var straight = await ShapesPretrainerTests.Trainer(recipe, temp.File("straight")).RunAsync();
        // Stopped inside the restarted part: the checkpoint holds both groups' moments under their parameter names.
        await ShapesPretrainerTests.InterruptAfterAsync(recipe, temp.File("resumed"), 4);
        var resumed = await ShapesPretrainerTests.Trainer(recipe, temp.File("resumed"), resume: true).RunAsync();
        ShapesPretrainerTests.AssertSameRun(straight, resumed);
    }
}
