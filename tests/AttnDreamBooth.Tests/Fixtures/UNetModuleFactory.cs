using AttnDreamBooth.Models.UNet;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Builds the U-Net of a pipeline's "unet" folder for the load check and the real-size shape tests.</summary>
public sealed class UNetModuleFactory : IComponentModuleFactory
{
    public string Component => "unet";

    public torch.nn.Module Build(string configPath, torch.Device device) => new UNet2DConditionModel(UNetConfig.Load(configPath), device);
}
