using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// LoRA training interrupted (cancelled after a checkpoint) and resumed ends bit-identical to an uninterrupted run on the
/// tiny SD 1.x pipeline: mid stage 2, at the stage 2/3 boundary and mid stage 3, with adapter dropout, and for a plan
/// whose stage 3 fine-tunes the whole U-Net after LoRA stage 2 (the adapters are merged in between).
/// </summary>
public sealed class LoraResumeTests
{
    private static readonly Dictionary<string, Lazy<Task<byte[]>>> References = new(StringComparer.Ordinal);

    private static StagePlan PlanOf(string kind) => kind switch
    {
        "lora" => LoraTrainingTests.Plan(2, 2, 2),
        "dropout" => LoraTrainingTests.Plan(2, 2, 2, dropout: 0.25),
        "lora-then-full" => TinyPipeline.Plan(2, 2, 2).WithLora(TrainingStage.CrossAttention, new LoraOptions(Rank: 2))
            .With(TrainingStage.CrossAttention, s => s with { LearningRate = 1e-3 }),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The uninterrupted run of a plan, computed once per plan for every interruption point.</summary>
    private static Task<byte[]> ReferenceAsync(string kind)
    {
        Lazy<Task<byte[]>> reference;
        lock (References)
        {
            if (!References.TryGetValue(kind, out reference!))
            {
                reference = new Lazy<Task<byte[]>>(async () =>
                {
                    using var pipeline = TinyPipeline.Build(PlanOf(kind), TinyPipeline.Options());
                    await pipeline.TrainAsync(TinyPipeline.Dog());
                    return State(pipeline);
                });
                References[kind] = reference;
            }
        }
        return reference.Value;
    }

    [Theory]
    [InlineData("lora", 3)]
    [InlineData("lora", 4)]
    [InlineData("lora", 5)]
    [InlineData("dropout", 5)]
    [InlineData("lora-then-full", 4)]
    [InlineData("lora-then-full", 5)]
    public async Task InterruptedAndResumedEqualsUninterrupted(string kind, int cancelAfterGlobalStep)
    {
        var plan = PlanOf(kind);
        byte[] reference = await ReferenceAsync(kind);
        using var dir = TestPaths.CreateTempDirectory();
        string checkpoints = dir.File("ckpt");
        using var cts = new CancellationTokenSource();
        using (var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options(checkpoints)))
        {
            var progress = new InlineProgress<TrainingProgress>(p => { if (p.GlobalStep == cancelAfterGlobalStep) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), progress, cts.Token));
            Assert.Null(pipeline.ConceptLora);
            if (kind == "lora") AssertBaseOutput(pipeline);
        }
        var (state, tensors) = TrainingCheckpoint.Read(TrainingCheckpoint.Latest(checkpoints)!);
        Assert.Equal(cancelAfterGlobalStep, state.GlobalStep);
        // LoRA stages checkpoint the adapters, not the U-Net; a full stage after them holds the U-Net with the adapters merged.
        bool inFullStage = kind == "lora-then-full" && state.Stage == (int)TrainingStage.UNet;
        Assert.Equal(!inFullStage, state.HasLora);
        Assert.Equal(inFullStage, state.HasUNet);
        Assert.Equal(!inFullStage, tensors.Keys.Any(k => k.StartsWith("lora.lora_unet_", StringComparison.Ordinal)));
        Assert.Equal(inFullStage, tensors.Keys.Any(k => k.StartsWith("unet.", StringComparison.Ordinal)));
        Assert.Equal(kind == "dropout", tensors.ContainsKey("lora_rng.dropout"));
        foreach (var t in tensors.Values) t.Dispose();

        using (var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options(checkpoints)))
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog(), resumeFrom: checkpoints);
            Assert.Equal(6, model.LossHistory.Count);
            Assert.Equal(kind != "lora-then-full", model.IsLora);
            Assert.True(reference.AsSpan().SequenceEqual(State(pipeline)), $"{kind}: resuming after global step {cancelAfterGlobalStep} is not bit-identical");
        }
    }

    /// <summary>A cancelled LoRA run leaves the U-Net as the base model: weights untouched and no adapter hooked on.</summary>
    private static void AssertBaseOutput(PersonalizationPipeline pipeline)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var baseUNet = UNet2DConditionModel.FromFolder(Path.Combine(TestPaths.TinySd1, "unet"));
        baseUNet.eval();
        pipeline.Components.UNet.eval();
        var g = new torch.Generator(3);
        var sample = torch.randn([1, 4, 8, 8], generator: g);
        var text = torch.randn([1, 77, baseUNet.Config.CrossAttentionDim[0]], generator: g);
        var t = torch.tensor(500L);
        Assert.True(TinyPipeline.BitEqual(baseUNet.call(sample, t, text), pipeline.Components.UNet.call(sample, t, text)),
            "the cancelled run left adapters hooked on the U-Net or changed its weights");
    }

    /// <summary>Everything a run produces: the embedding, the U-Net (adapters merged) and the adapters themselves.</summary>
    private static byte[] State(PersonalizationPipeline pipeline)
    {
        using var stream = new MemoryStream();
        stream.Write(PersonalizationPipelineTests.Fingerprint(pipeline));
        if (pipeline.ConceptLora is { } lora)
        {
            foreach (var (_, p) in lora.named_parameters()) stream.Write(p.detach().cpu().contiguous().bytes);
        }
        return stream.ToArray();
    }

}
