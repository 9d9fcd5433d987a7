using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// <see cref="TrainingOptions.ReleaseTextEncoderDuringTraining"/>: the text encoder's weights are freed in the stages that
/// no longer need it (seen from the progress callback, which runs on the training thread), training is bit for bit the
/// same, and the encoder comes back as the base model's exact weights in the same parameter objects — after a finished,
/// a cancelled, a failed and a resumed run.
/// </summary>
public sealed class TextEncoderReleaseTests
{

    /// <summary>A run's result: its losses, the concept row and U-Net as bytes, and per step whether the encoder was released.</summary>
    private sealed record Outcome(IReadOnlyList<double> Losses, byte[] Weights, IReadOnlyList<(TrainingStage Stage, bool Released)> During);

    /// <summary>The text encoder before training: its values, its parameter objects and its output for a prompt.</summary>
    private sealed record EncoderState(Dictionary<string, torch.Tensor> Values, torch.Tensor[] Parameters, torch.Tensor Output);

    private static readonly TrainingOptions Release = TinyPipeline.Options() with { ReleaseTextEncoderDuringTraining = true };

    private static torch.Tensor Encode(StableDiffusionComponents components)
    {
        using var _ = torch.no_grad();
        var ids = components.Tokenizer.EncodeToTensor(["a photo of a dog"], components.Device);
        return components.TextEncoder.Forward(ids).LastHiddenState.detach().clone();
    }

    private static EncoderState Capture(StableDiffusionComponents components) =>
        new(TinyPipeline.Snapshot(components.TextEncoder), components.TextEncoder.parameters().Cast<torch.Tensor>().ToArray(), Encode(components));

    /// <summary>Same parameter objects, frozen, holding the base values, and the same output.</summary>
    private static void AssertRestored(StableDiffusionComponents components, EncoderState before)
    {
        var now = components.TextEncoder.parameters().Cast<torch.Tensor>().ToArray();
        Assert.Equal(before.Parameters.Length, now.Length);
        for (int i = 0; i < now.Length; i++) Assert.Same(before.Parameters[i], now[i]);
        Assert.All(now, p => Assert.False(p.requires_grad));
        var state = components.TextEncoder.state_dict();
        Assert.Equal(before.Values.Keys.Order(StringComparer.Ordinal), state.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, value) in state) Assert.True(TinyPipeline.BitEqual(before.Values[name], value), $"text_encoder.{name} differs from the base model");
        Assert.True(TinyPipeline.BitEqual(before.Output, Encode(components)), "the restored encoder's output differs");
    }

    private static long Elements(StableDiffusionComponents components) => components.TextEncoder.parameters().Sum(p => p.numel());

    /// <summary>Whether the encoder is released now; fails when it is partly released.</summary>
    private static bool Released(StableDiffusionComponents components, long full, TrainingProgress p)
    {
        long now = Elements(components);
        Assert.True(now == 0 || now == full, $"{now} of {full} text-encoder elements held at stage {p.Stage} step {p.Step}");
        return now == 0;
    }

    private static async Task<Outcome> Train(StagePlan plan, TrainingOptions options)
    {
        using var pipeline = TinyPipeline.Build(plan, options);
        var before = Capture(pipeline.Components);
        long full = Elements(pipeline.Components);
        var during = new List<(TrainingStage, bool)>();
        var progress = new RecordingProgress<TrainingProgress>(p => during.Add((p.Stage, Released(pipeline.Components, full, p))));
        var model = await pipeline.TrainAsync(TinyPipeline.Dog(), progress);
        AssertRestored(pipeline.Components, before);
        return new Outcome(model.LossHistory.ToArray(), PersonalizationPipelineTests.Fingerprint(pipeline), during);
    }

    /// <summary>Per step of <paramref name="plan"/>: whether its stage is one of <paramref name="released"/>.</summary>
    private static (TrainingStage, bool)[] Steps(StagePlan plan, params TrainingStage[] released) =>
        plan.EnabledStages.SelectMany(s => Enumerable.Repeat((s, released.Contains(s)), plan[s].Steps)).ToArray();

    [Fact]
    public async Task AThreeStageRunFreesTheEncoderInStages2And3AndTrainsBitForBitAsWithoutIt()
    {
        var plan = TinyPipeline.Plan(2, 2, 2);
        var reference = await Train(plan, TinyPipeline.Options());
        var released = await Train(plan, Release);

        Assert.Equal(Steps(plan), reference.During);
        Assert.Equal(Steps(plan, TrainingStage.CrossAttention, TrainingStage.UNet), released.During);
        Assert.Equal(reference.Losses, released.Losses);
        Assert.Equal(reference.Weights, released.Weights);
    }

    public static TheoryData<string> Plans() => ["no stage 1", "stage 1 only", "stages 1 and 3", "lora", "render after stage 2", "render interval", "prior preservation"];

    private static (StagePlan Plan, TrainingOptions Options, TrainingStage[] Released) Case(string name)
    {
        var renders = TinyPipeline.Options() with { ValidationPrompts = ["a {}"], ValidationGeneration = new GenerationOptions { Steps = 1, Seed = 2 } };
        return name switch
        {
            "no stage 1" => (TinyPipeline.Plan(0, 1, 1), TinyPipeline.Options(), [TrainingStage.CrossAttention, TrainingStage.UNet]),
            "stage 1 only" => (TinyPipeline.Plan(2, 0, 0), TinyPipeline.Options(), []),
            "stages 1 and 3" => (TinyPipeline.Plan(1, 0, 2), TinyPipeline.Options(), [TrainingStage.UNet]),
            "lora" => (TinyPipeline.Plan(1, 1, 1).WithLora(new LoraOptions(Rank: 2), learningRate: 1e-3), TinyPipeline.Options(),
                [TrainingStage.CrossAttention, TrainingStage.UNet]),
            // The render at the end of stage 2 needs the encoder; stage 3 renders nothing.
            "render after stage 2" => (TinyPipeline.Plan(1, 1, 1), renders with { ValidationAfterStages = [TrainingStage.CrossAttention] }, [TrainingStage.UNet]),
            "render interval" => (TinyPipeline.Plan(1, 1, 1), renders with { ValidationInterval = 2 }, []),
            // The class prompt is encoded before the first stage.
            "prior preservation" => (TinyPipeline.Plan(1, 1, 1).With(TrainingStage.UNet, s => s with { PriorLossWeight = 1.0 }) with { PriorPreservation = TinyMethods.Prior() },
                TinyPipeline.Options(), [TrainingStage.CrossAttention, TrainingStage.UNet]),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
        };
    }

    [Theory]
    [MemberData(nameof(Plans))]
    public async Task TheEncoderIsReleasedOnlyWhereNothingNeedsItAndTrainingIsUnchanged(string name)
    {
        var (plan, options, expected) = Case(name);
        var released = await Train(plan, options with { ReleaseTextEncoderDuringTraining = true });

        Assert.Equal(Steps(plan, expected), released.During);
        // A run that never releases the encoder is the run without the option.
        if (expected.Length == 0) return;
        var reference = await Train(plan, options);
        Assert.Equal(reference.Losses, released.Losses);
        Assert.Equal(reference.Weights, released.Weights);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task StoppingInStage2RestoresTheEncoder(bool cancel)
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(2, 2, 2), Release);
        var before = Capture(pipeline.Components);
        long full = Elements(pipeline.Components);
        using var cts = new CancellationTokenSource();
        bool releasedAtStop = false;
        var progress = new RecordingProgress<TrainingProgress>(p =>
        {
            if (p.GlobalStep != 3) return;
            releasedAtStop = Released(pipeline.Components, full, p);
            if (cancel) cts.Cancel();
            else throw new InvalidOperationException("stop");
        });
        if (cancel) await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), progress, cts.Token));
        else await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), progress, cts.Token));

        Assert.Equal(TrainingStage.CrossAttention, progress.Items[^1].Stage);
        Assert.True(releasedAtStop, "the encoder was held in stage 2");
        Assert.Null(pipeline.Concept);
        AssertRestored(pipeline.Components, before);
    }

    [Fact]
    public async Task ResumingFromAStage2CheckpointMatchesAnUninterruptedRun()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var plan = TinyPipeline.Plan(2, 2, 2);
        var reference = await Train(plan, TinyPipeline.Options());
        var options = Release with { CheckpointDirectory = dir.File("ckpt") };

        using var cts = new CancellationTokenSource();
        using (var first = TinyPipeline.Build(plan, options))
        {
            var progress = new RecordingProgress<TrainingProgress>(p => { if (p.GlobalStep == 3) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.TrainAsync(TinyPipeline.Dog(), progress, cts.Token));
        }
        var (state, _) = TrainingCheckpoint.Read(TrainingCheckpoint.Latest(dir.File("ckpt"))!);
        Assert.Equal(((int)TrainingStage.CrossAttention, 1), (state.Stage, state.StepInStage));

        using var resumed = TinyPipeline.Build(plan, options with { ResumeFrom = dir.File("ckpt") });
        var before = Capture(resumed.Components);
        long full = Elements(resumed.Components);
        var during = new List<(TrainingStage, bool)>();
        var model = await resumed.TrainAsync(TinyPipeline.Dog(), new RecordingProgress<TrainingProgress>(p => during.Add((p.Stage, Released(resumed.Components, full, p)))));

        Assert.Equal([(TrainingStage.CrossAttention, true), (TrainingStage.UNet, true), (TrainingStage.UNet, true)], during);
        Assert.Equal(reference.Losses, model.LossHistory);
        Assert.Equal(reference.Weights, PersonalizationPipelineTests.Fingerprint(resumed));
        AssertRestored(resumed.Components, before);
    }
}
