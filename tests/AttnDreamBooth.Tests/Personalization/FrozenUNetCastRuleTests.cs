using AttnDreamBooth.Personalization;
using AttnDreamBooth.Tests.Fixtures;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// The trainer's rule for which U-Net weights a stage holds in half precision, as the memory plan and the training-memory
/// benchmark apply it: the frozen layers in stages 1–2 and in a LoRA stage 3, nothing in a full stage 3 or without a dtype.
/// </summary>
public sealed class FrozenUNetCastRuleTests
{
    [Theory]
    [InlineData(TrainingStage.Embedding, false)]
    [InlineData(TrainingStage.CrossAttention, false)]
    [InlineData(TrainingStage.UNet, false)]
    [InlineData(TrainingStage.UNet, true)]
    public void Frozen_layers_are_cast_and_trained_ones_stay_float32(TrainingStage stage, bool lora)
    {
        using var unet = TinyUNet.Load(TestPaths.TinySd2);
        var named = unet.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        if (lora) StageParameters.FreezeAll(named);
        else StageParameters.Freeze(stage, named);

        Assert.Empty(TrainingMemoryPlan.CastFrozenUNet(unet, null, stage, lora));
        Assert.All(unet.parameters(), p => Assert.Equal(torch.ScalarType.Float32, p.dtype));

        var cast = TrainingMemoryPlan.CastFrozenUNet(unet, torch.ScalarType.BFloat16, stage, lora).ToHashSet();
        foreach (var (name, p) in unet.named_parameters())
        {
            bool trained = !lora && StageParameters.IsTrained(stage, name);
            bool expectCast = !(stage == TrainingStage.UNet && !lora) && !trained;
            Assert.Equal(expectCast, cast.Contains(name));
            Assert.Equal(expectCast ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32, p.dtype);
        }
    }
}
