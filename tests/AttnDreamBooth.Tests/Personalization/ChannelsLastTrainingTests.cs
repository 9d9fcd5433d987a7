using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// <see cref="TrainingOptions.ChannelsLast"/> and <see cref="ChannelsLastLayout"/>: the U-Net's convolution weights are laid
/// out channels-last while training (values and parameter objects unchanged), training matches the standard layout up to
/// float summation order, the layout is undone when training ends, a checkpointed run resumes bit-identically, and the
/// option refuses 8-bit optimizer states.
/// </summary>
public sealed class ChannelsLastTrainingTests
{
    private const string Conv = "down_blocks.0.resnets.0.conv1.weight";

    [Fact]
    public void TheLayoutChangesOnlyTheMemoryOrderOfConvolutionWeightsAndTheirGradients()
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(0, 0, 1), TinyPipeline.Options());
        var unet = pipeline.Components.UNet;
        var convs = unet.modules().OfType<Conv2d>().Where(c => c.weight!.shape[2] > 1).ToArray();
        Assert.NotEmpty(convs);
        var before = TinyPipeline.Snapshot(unet);
        var parameters = unet.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var conv = convs[0].weight!;
        conv.grad = randn(conv.shape, generator: new Generator(3));
        var gradBefore = conv.grad.clone();

        Assert.True(ChannelsLastLayout.Apply(unet) >= convs.Length);
        Assert.All(convs, c => Assert.True(ChannelsLastLayout.IsChannelsLast(c.weight!), "a 3×3 convolution weight is channels-last"));
        Assert.True(ChannelsLastLayout.IsChannelsLast(conv.grad!));
        Assert.True(TinyPipeline.BitEqual(gradBefore, conv.grad!));
        Assert.All(unet.named_parameters(), p => Assert.Same(parameters[p.name], p.parameter));
        Assert.All(unet.state_dict(), p => Assert.True(TinyPipeline.BitEqual(before[p.Key], p.Value), p.Key));
        Assert.Equal(0, ChannelsLastLayout.Apply(unet));

        Assert.True(ChannelsLastLayout.Undo(unet) > 0);
        Assert.All(unet.parameters(), p => Assert.True(p.is_contiguous()));
        Assert.True(conv.grad!.is_contiguous());
        Assert.All(unet.state_dict(), p => Assert.True(TinyPipeline.BitEqual(before[p.Key], p.Value), p.Key));
    }

    [Fact]
    public async Task TrainingIsChannelsLastWhileItRunsMatchesTheStandardLayoutAndEndsContiguous()
    {
        var plan = TinyPipeline.Plan(2, 2, 2);
        var (standardLosses, standardWeights, standardDuring) = await Train(plan, TinyPipeline.Options());
        var (losses, weights, during) = await Train(plan, TinyPipeline.Options() with { ChannelsLast = true });

        Assert.All(standardDuring, d => Assert.False(d));
        Assert.Equal(6, during.Count);
        Assert.All(during, d => Assert.True(d, "the U-Net's convolution weights are channels-last during every step"));
        // Same arithmetic in another summation order: the standard run's losses and weights to float32 rounding.
        Assert.Equal(standardLosses.Count, losses.Count);
        for (int i = 0; i < losses.Count; i++) Assert.True(Math.Abs(losses[i] - standardLosses[i]) <= 1e-5 * Math.Abs(standardLosses[i]), $"loss {i}: {losses[i]} vs {standardLosses[i]}");
        foreach (var (name, w) in weights)
        {
            double scale = standardWeights[name].abs().max().item<float>();
            double delta = (w - standardWeights[name]).abs().max().item<float>();
            Assert.True(delta <= 1e-4 * Math.Max(scale, 1e-3), $"{name}: max |Δ| {delta} at scale {scale}");
        }
    }

    [Fact]
    public async Task WithTheMemoryOptionsTheLayoutSurvivesTheCastsAndTheResultMatches()
    {
        var plan = TinyPipeline.Plan(1, 2, 1);
        var lean = TinyPipeline.Options() with { GradientCheckpointing = true, FrozenWeightsDType = ScalarType.BFloat16, ReleaseVaeDuringTraining = true };
        var (standardLosses, standardWeights, _) = await Train(plan, lean);
        var (losses, weights, during) = await Train(plan, lean with { ChannelsLast = true });

        // Stages 1-2 hold the probe in bf16 (cast and restored around each stage); the layout holds throughout.
        Assert.All(during, d => Assert.True(d, "channels-last in every step, across the bf16 casts and the float32 restore"));
        for (int i = 0; i < losses.Count; i++) Assert.True(Math.Abs(losses[i] - standardLosses[i]) <= 1e-3 * Math.Abs(standardLosses[i]), $"loss {i}: {losses[i]} vs {standardLosses[i]}");
        foreach (var (name, w) in weights)
        {
            Assert.Equal(ScalarType.Float32, w.dtype);
            double scale = standardWeights[name].abs().max().item<float>();
            Assert.True((w - standardWeights[name]).abs().max().item<float>() <= 1e-3 * Math.Max(scale, 1e-3), name);
        }
    }

    [Fact]
    public async Task ACheckpointedChannelsLastRunResumesBitIdentically()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var plan = TinyPipeline.Plan(2, 2, 2);
        var options = TinyPipeline.Options() with { ChannelsLast = true };
        var (referenceLosses, referenceWeights, _) = await Train(plan, options);

        var checkpointing = options with { CheckpointDirectory = dir.File("ckpt") };
        using var cts = new CancellationTokenSource();
        using (var first = TinyPipeline.Build(plan, checkpointing))
        {
            var stop = new InlineProgress<TrainingProgress>(p => { if (p.GlobalStep == 5) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.TrainAsync(TinyPipeline.Dog(), stop, cts.Token));
            Assert.True(first.Components.UNet.parameters().All(p => p.is_contiguous()), "a cancelled run lays the weights back");
        }
        using var resumed = TinyPipeline.Build(plan, checkpointing with { ResumeFrom = dir.File("ckpt") });
        var model = await resumed.TrainAsync(TinyPipeline.Dog());

        Assert.Equal(referenceLosses, model.LossHistory);
        foreach (var (name, w) in resumed.Components.UNet.state_dict()) Assert.True(TinyPipeline.BitEqual(referenceWeights[name], w), name);
    }

    [Fact]
    public void EightBitOptimizerStatesAreRefused()
    {
        var options = TinyPipeline.Options() with { ChannelsLast = true, EightBitOptimizerStates = true };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal(nameof(TrainingOptions.ChannelsLast), error.ParamName);
        (options with { EightBitOptimizerStates = false }).Validate();
    }

    /// <summary>Trains <paramref name="plan"/> and returns the losses, the trained U-Net weights and, per step, whether the
    /// probe convolution weight was channels-last then; afterwards every U-Net parameter must be contiguous.</summary>
    private static async Task<(IReadOnlyList<double> Losses, Dictionary<string, Tensor> Weights, List<bool> During)> Train(StagePlan plan, TrainingOptions options)
    {
        using var pipeline = TinyPipeline.Build(plan, options);
        var during = new List<bool>();
        // Looked up at every step: a cast to half precision replaces the parameter objects.
        var model = await pipeline.TrainAsync(TinyPipeline.Dog(), new InlineProgress<TrainingProgress>(_ =>
            during.Add(ChannelsLastLayout.IsChannelsLast(pipeline.Components.UNet.named_parameters().Single(p => p.name == Conv).parameter))));
        Assert.All(pipeline.Components.UNet.parameters(), p => Assert.True(p.is_contiguous(), "the standard layout is back after training"));
        return (model.LossHistory.ToArray(), TinyPipeline.Snapshot(pipeline.Components.UNet), during);
    }
}
