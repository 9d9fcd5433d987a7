using AttnDreamBooth.Models.Blocks;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>The shared <see cref="ResnetBlock2D"/> as every VAE level uses it: no time embedding, no dropout, output
/// scale 1, GroupNorm epsilon 1e-6, the config's <c>act_fn</c>.</summary>
internal static class VaeResnet
{
    public static ResnetBlock2D Create(int inChannels, int outChannels, int groups, Func<Tensor, Tensor> activation, Device? device) =>
        new(inChannels, outChannels, tembChannels: null, groups, VaeConstants.NormEps, device: device, activation: activation);
}
