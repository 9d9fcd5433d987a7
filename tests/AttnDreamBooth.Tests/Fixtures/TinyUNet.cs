using AttnDreamBooth.Models.UNet;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>The tiny SD 2.x fixture U-Net (heads 2/4, linear projections, upcast) and seeded inputs for it.</summary>
internal static class TinyUNet
{
    public static UNet2DConditionModel Load(string? pipeline = null)
    {
        var unet = UNet2DConditionModel.FromFolder(Path.Combine(pipeline ?? TestPaths.TinySd2, "unet"));
        unet.eval();
        return unet;
    }

    /// <summary>Sample [batch, 4, h, w], timesteps [batch], text states [batch, 77, cross_dim].</summary>
    public static (torch.Tensor Sample, torch.Tensor Timesteps, torch.Tensor Text) Inputs(UNet2DConditionModel unet, int batch = 2, int height = 12, int width = 16, long seed = 1234)
    {
        var g = new torch.Generator((ulong)seed);
        var sample = torch.randn([batch, unet.Config.InChannels, height, width], generator: g);
        var timesteps = torch.randint(0, 1000, [batch], generator: g, dtype: torch.int64);
        var text = torch.randn([batch, 77, unet.Config.CrossAttentionDim[0]], generator: g);
        return (sample, timesteps, text);
    }
}
