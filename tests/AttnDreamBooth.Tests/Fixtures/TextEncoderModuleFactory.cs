using AttnDreamBooth.Models.Clip;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Builds <see cref="ClipTextModel"/> for the load check and the real-size name/shape tests.</summary>
public sealed class TextEncoderModuleFactory : IComponentModuleFactory
{
    public string Component => "text_encoder";

    public torch.nn.Module Build(string configPath, torch.Device device) => new ClipTextModel(ClipTextConfig.Load(configPath), device);

    public bool IsIgnorableKey(string key) => ClipTextModel.IsIgnorableKey(key);
}
