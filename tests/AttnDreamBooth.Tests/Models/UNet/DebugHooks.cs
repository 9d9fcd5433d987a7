using AttnDreamBooth.Models.UNet;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Tests.Models.UNet;

/// <summary>Forward hooks that copy a module's output (hidden states) out of the model's dispose scope.</summary>
internal static class DebugHooks
{
    /// <summary>Hooks the module at <paramref name="path"/>; returns an action that removes the hook.</summary>
    public static Action Capture(UNet2DConditionModel unet, string path, Action<Tensor> sink)
    {
        var module = unet.named_modules().FirstOrDefault(m => m.name == path).module
            ?? throw new XunitException($"The U-Net has no module '{path}' to hook");
        Tensor Keep(Tensor t) => t.detach().clone().DetachFromDisposeScope();
        switch (module)
        {
            case Module<Tensor, Tensor> m:
            {
                var h = m.register_forward_hook((_, _, output) => { sink(Keep(output)); return output; });
                return () => h.remove();
            }
            case UNetDownBlock m:
            {
                var h = m.register_forward_hook((_, _, _, _, output) => { sink(Keep(output.HiddenStates)); return output; });
                return () => h.remove();
            }
            case UNetMidBlock2DCrossAttn m:
            {
                var h = m.register_forward_hook((_, _, _, _, output) => { sink(Keep(output)); return output; });
                return () => h.remove();
            }
            case UNetUpBlock m:
            {
                var h = m.register_forward_hook((_, _, _, _, _, _, output) => { sink(Keep(output)); return output; });
                return () => h.remove();
            }
            default:
                throw new XunitException($"Don't know how to hook '{path}' ({module.GetType().Name})");
        }
    }
}
