using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Lora;

/// <summary>Tiny fixture models and seeded adapter weights for the LoRA tests.</summary>
internal static class LoraTestModels
{
    public static UNet2DConditionModel UNet(string pipeline)
    {
        var unet = UNet2DConditionModel.FromFolder(Path.Combine(pipeline, "unet"));
        unet.eval();
        return unet;
    }

    public static ClipTextModel TextEncoder(string pipeline)
    {
        var te = ClipTextModel.FromFolder(Path.Combine(pipeline, "text_encoder"));
        te.eval();
        return te;
    }

    /// <summary>Fills every adapter's down and up weights with seeded normal values (a fresh adapter's up is zero, so it would do nothing).</summary>
    public static void Randomize(LoraNetwork network, long seed, double upStd = 0.3)
    {
        var g = new torch.Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach (var a in network.Adapters)
        {
            a.DownWeight.copy_(torch.randn(a.DownWeight.shape, generator: g).div(Kept(Math.Sqrt(a.DownWeight[0].numel()))));
            a.UpWeight.copy_(torch.randn(a.UpWeight.shape, generator: g).mul(Kept(upStd)));
        }
    }

    public static Dictionary<string, torch.Tensor> Snapshot(torch.nn.Module model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
}
