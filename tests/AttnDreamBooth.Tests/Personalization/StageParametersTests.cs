using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class StageParametersTests
{
    public static TheoryData<string> SdCases()
    {
        var data = new TheoryData<string>();
        foreach (var c in FixtureRoots.Cases.Values.Where(c => c.Kind == "sd_pipeline" && c.Manifest.DerivedFacts.TryGetProperty("method.stages", out _)))
            data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(SdCases))]
    public void Stage_selection_matches_the_official_trainable_sets(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        using var weights = SafetensorsFile.Open(Path.Combine(fixture.PipelineFolder, "unet", "diffusion_pytorch_model.safetensors"));
        var names = weights.Names.ToArray();
        var stages = fixture.Manifest.Fact("method.stages");

        var expected2 = stages.GetProperty("2").GetProperty("trainable_parameters").EnumerateArray().Select(e => e.GetString()!).ToHashSet();
        var selected2 = names.Where(n => StageParameters.IsTrained(TrainingStage.CrossAttention, n)).ToHashSet();
        Assert.Equal(expected2.Order(), selected2.Order());
        Assert.Equal(stages.GetProperty("2").GetProperty("trainable_tensors").GetInt32(), selected2.Count);

        Assert.Equal(stages.GetProperty("3").GetProperty("trainable_tensors").GetInt32(), names.Count(n => StageParameters.IsTrained(TrainingStage.UNet, n)));
        Assert.DoesNotContain(names, n => StageParameters.IsTrained(TrainingStage.Embedding, n));
    }

    [Fact]
    public void Freeze_sets_requires_grad_and_drops_stale_gradients()
    {
        var q = new Parameter(torch.ones(2, 2));
        var norm = new Parameter(torch.ones(2));
        norm.grad = torch.ones(2);
        (string, Parameter)[] all = [("mid_block.attentions.0.transformer_blocks.0.attn2.to_q.weight", q), ("mid_block.attentions.0.transformer_blocks.0.norm2.weight", norm)];

        var trained = StageParameters.Freeze(TrainingStage.CrossAttention, all);
        Assert.Single(trained);
        Assert.True(q.requires_grad);
        Assert.False(norm.requires_grad);
        Assert.Null(norm.grad);

        Assert.Equal(2, StageParameters.Freeze(TrainingStage.UNet, all).Count);
        Assert.True(norm.requires_grad);
        Assert.Empty(StageParameters.Freeze(TrainingStage.Embedding, all));
        Assert.False(q.requires_grad);
    }

    [Theory]
    [InlineData("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.bias", true)]
    [InlineData("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight", false)]
    [InlineData("down_blocks.0.attentions.0.transformer_blocks.0.norm2.weight", false)]
    [InlineData("attn2.to_k.weight", true)]
    public void Cross_attention_rule(string name, bool trained) =>
        Assert.Equal(trained, StageParameters.IsTrained(TrainingStage.CrossAttention, name));
}
