using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Tests.Parity;
using TorchSharp;

namespace AttnDreamBooth.Tests.Models.Vae;

/// <summary>Builds <see cref="AutoencoderKL"/> for the load check and the real-size name/shape tests.</summary>
public sealed class VaeModuleFactory : IComponentModuleFactory
{
    public string Component => "vae";

    public torch.nn.Module Build(string configPath, torch.Device device) => new AutoencoderKL(AutoencoderKLConfig.Load(configPath), device);
}
