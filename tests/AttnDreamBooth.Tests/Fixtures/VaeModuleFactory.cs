using AttnDreamBooth.Models.Vae;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Builds <see cref="AutoencoderKL"/> for the load check and the real-size name/shape tests.</summary>
public sealed class VaeModuleFactory : IComponentModuleFactory
{
    public string Component => "vae";

    public torch.nn.Module Build(string configPath, torch.Device device) => new AutoencoderKL(AutoencoderKLConfig.Load(configPath), device);
}
