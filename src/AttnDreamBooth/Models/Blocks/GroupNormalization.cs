using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// Creates GroupNorm layers that start as the identity affine map (weight 1, bias 0), as PyTorch's do. TorchSharp
/// 0.107's <c>nn.GroupNorm</c> leaves its affine parameters as whatever the allocator returns (often huge or NaN):
/// harmless when weights are loaded, fatal for a model trained from scratch.
/// </summary>
internal static class GroupNormalization
{
    public static GroupNorm Create(int groups, int channels, double eps, Device? device)
    {
        var norm = nn.GroupNorm(groups, channels, eps: eps, affine: true, device: device);
        using (no_grad())
        {
            norm.weight!.fill_(Kept(1.0));
            norm.bias!.zero_();
        }
        return norm;
    }
}
