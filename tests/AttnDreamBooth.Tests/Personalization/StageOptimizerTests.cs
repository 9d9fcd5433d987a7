using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Tests.Parity;
using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// The optimizer half of the fixtures' one-step-per-stage references: from the stored gradient and the parameter's
/// value before the step, one AdamW step configured from the Paper preset must give <c>after_step</c> and
/// <c>step_delta</c>. (The forward/backward half needs the full pipeline.)
/// </summary>
public sealed class StageOptimizerTests
{
    public static TheoryData<string, int> Steps()
    {
        var data = new TheoryData<string, int>();
        foreach (var c in FixtureRoots.Cases.Values.Where(c => c.Kind == "sd_pipeline" && c.HasTensor("method.stage1.embedding_grad")))
            for (int stage = 1; stage <= 3; stage++) data.Add(c.Name, stage);
        return data;
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public void One_AdamW_step_matches_the_reference(string caseName, int stage)
    {
        var fixture = FixtureRoots.Get(caseName);
        using var ctx = new ParityContext(fixture);
        using var scope = torch.NewDisposeScope();
        var trainingStage = (TrainingStage)stage;
        var options = StagePlan.Paper[trainingStage];
        Assert.Equal(fixture.Manifest.Fact("method.stages").GetProperty(stage.ToString()).GetProperty("learning_rate").GetDouble(), options.LearningRate);

        torch.Tensor before, grad;
        string after, delta;
        if (trainingStage == TrainingStage.Embedding)
        {
            before = ctx.Tensor("method.stage1.initial_embedding");
            grad = ctx.Tensor("method.stage1.embedding_grad");
            (after, delta) = ("method.stage1.embedding_after_step", "method.stage1.embedding_step_delta");
        }
        else
        {
            string name = trainingStage == TrainingStage.CrossAttention ? "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight" : "conv_in.weight";
            using var unet = SafetensorsFile.Open(Path.Combine(fixture.PipelineFolder, "unet", "diffusion_pytorch_model.safetensors"));
            before = unet.ReadTensor(name, torch.float32);
            grad = ctx.Tensor($"method.stage{stage}.grad.{name}");
            (after, delta) = ($"method.stage{stage}.after_step.{name}", $"method.stage{stage}.step_delta.{name}");
        }

        var parameter = new Parameter(before.clone());
        parameter.grad = grad.clone();
        using var optimizer = new AdamWOptimizer([("p", parameter)], options.Optimizer, options.LearningRate);
        Assert.True(double.IsNaN(StageOptimizer.ClipGradients([parameter], options))); // Paper: no clipping
        optimizer.Step();
        Assert.Equal(2 * parameter.NumberOfElements * 4, optimizer.StateBytes);
        ctx.AssertClose(after, parameter);
        ctx.AssertClose(delta, parameter.detach().sub(before));
    }

    [Fact]
    public void Clipping_applies_when_enabled()
    {
        var p = new Parameter(torch.zeros(4));
        p.grad = torch.tensor(new float[] { 3, 4, 0, 0 });
        var options = StagePlan.Paper.Stage2 with { MaxGradNorm = 1.0 };
        Assert.Equal(5.0, StageOptimizer.ClipGradients([p], options), 5);
        Assert.Equal(1.0, p.grad.norm().item<float>(), 4);
        Assert.Equal(1.0, StageOptimizer.ClipGradients([p], StagePlan.Paper.Stage2, measure: true), 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamWOptimizer([("p", p)], new AdamWOptions(), learningRate: -1));
        Assert.Throws<ArgumentException>(() => new AdamWOptimizer([("p", p), ("p", p)], new AdamWOptions(), learningRate: 1e-3));
    }

    [Fact]
    public void Create_takes_the_stage_settings_and_the_runs_state_format()
    {
        var big = new Parameter(torch.ones(5000));
        var small = new Parameter(torch.ones(100));
        big.grad = torch.full(5000, Kept(0.5f));
        small.grad = torch.full(100, Kept(0.5f));
        var settings = StagePlan.Paper.Stage2;
        using var plain = StageOptimizer.Create([("big", big), ("small", small)], settings, new TrainingOptions());
        using var eightBit = StageOptimizer.Create([("big", big), ("small", small)], settings, new TrainingOptions { EightBitOptimizerStates = true });
        Assert.Equal(settings.LearningRate, plain.LearningRate);
        Assert.Equal(settings.Optimizer, plain.Options);
        Assert.Equal(AdamWStateFormat.Float32, plain.StateFormat);
        Assert.Equal(AdamWStateFormat.BlockwiseInt8, eightBit.StateFormat);
        plain.Step();
        eightBit.Step();
        Assert.Equal(2 * 5100 * 4, plain.StateBytes);
        // The 5,000-element tensor is quantized (codes + one float32 scale per 256), the 100-element one stays float32.
        Assert.Equal(2 * (5000 + 4 * 20) + 2 * 100 * 4, eightBit.StateBytes);
    }
}
