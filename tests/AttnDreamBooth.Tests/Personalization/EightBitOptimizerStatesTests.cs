using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary><see cref="TrainingOptions.EightBitOptimizerStates"/> in the pipeline: checkpoints hold the 8-bit moments,
/// a cancelled run resumes bit-identically, and a checkpoint only resumes with the setting that wrote it.</summary>
public sealed class EightBitOptimizerStatesTests
{
    private sealed class CancelAt(int globalStep, CancellationTokenSource cts) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.GlobalStep == globalStep) cts.Cancel();
        }
    }

    // Quantize every tensor: the tiny model's attention projections are below bitsandbytes' 4,096-element threshold.
    private static TrainingOptions Options(string? checkpoints = null) =>
        TinyPipeline.Options(checkpoints) with { EightBitOptimizerStates = true, MinQuantizedOptimizerElements = 1 };

    [Fact]
    public async Task CancelledEightBitRunResumesBitIdenticallyAndOnlyWithTheSameSetting()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var plan = TinyPipeline.Plan(1, 2, 2);
        byte[] reference;
        IReadOnlyList<double> referenceLosses;
        using (var pipeline = TinyPipeline.Build(plan, Options()))
        {
            referenceLosses = (await pipeline.TrainAsync(TinyPipeline.Dog())).LossHistory.ToArray();
            reference = PersonalizationPipelineTests.Fingerprint(pipeline);
        }
        using (var float32 = TinyPipeline.Build(plan, TinyPipeline.Options()))
        {
            await float32.TrainAsync(TinyPipeline.Dog());
            Assert.NotEqual(reference, PersonalizationPipelineTests.Fingerprint(float32));
        }

        using (var cts = new CancellationTokenSource())
        using (var pipeline = TinyPipeline.Build(plan, Options(dir.File("ckpt"))))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), new CancelAt(2, cts), cts.Token));
        }
        var (state, tensors) = TrainingCheckpoint.Read(TrainingCheckpoint.Latest(dir.File("ckpt"))!);
        Assert.Equal((2, 1), ((int)state.Stage, state.StepInStage));
        var optimizerKeys = tensors.Keys.Where(k => k.StartsWith("optim.", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(optimizerKeys);
        Assert.All(optimizerKeys, k => Assert.True(k.EndsWith(".codes", StringComparison.Ordinal) || k.EndsWith(".absmax", StringComparison.Ordinal), k));

        using (var mismatched = TinyPipeline.Build(plan, TinyPipeline.Options(dir.File("ckpt"))))
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => mismatched.TrainAsync(TinyPipeline.Dog(), resumeFrom: dir.File("ckpt")));
            Assert.Contains("holds 8-bit moments", error.Message);
            Assert.Contains("cannot be resumed", error.Message);
        }
        using (var resumed = TinyPipeline.Build(plan, Options(dir.File("ckpt"))))
        {
            var model = await resumed.TrainAsync(TinyPipeline.Dog(), resumeFrom: dir.File("ckpt"));
            Assert.Equal(referenceLosses, model.LossHistory);
            Assert.Equal(reference, PersonalizationPipelineTests.Fingerprint(resumed));
        }
    }
}
