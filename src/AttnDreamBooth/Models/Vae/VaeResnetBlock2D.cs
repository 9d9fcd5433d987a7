using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> as the VAE uses it: no time embedding, no dropout, output scale 1,
/// GroupNorm epsilon 1e-6. <c>norm1 → act → conv1 → norm2 → act → conv2</c>, plus the input (through a 1x1
/// <c>conv_shortcut</c> when the channel count changes).
/// </summary>
internal sealed class VaeResnetBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly GroupNorm norm2;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;
    private readonly Func<Tensor, Tensor> _activation;

    public VaeResnetBlock2D(int inChannels, int outChannels, int groups, string actFn, Device? device)
        : base(nameof(VaeResnetBlock2D))
    {
        norm1 = AttnDreamBooth.Models.Blocks.GroupNormalization.Create(groups, inChannels, VaeConstants.NormEps, device);
        conv1 = nn.Conv2d(inChannels, outChannels, kernel_size: 3, stride: 1, padding: 1, device: device);
        norm2 = AttnDreamBooth.Models.Blocks.GroupNormalization.Create(groups, outChannels, VaeConstants.NormEps, device);
        conv2 = nn.Conv2d(outChannels, outChannels, kernel_size: 3, stride: 1, padding: 1, device: device);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, kernel_size: 1, stride: 1, padding: 0L, device: device);
        _activation = AttnDreamBooth.Models.Blocks.Activations.Get(actFn, AttnDreamBooth.Models.Blocks.ActivationNaming.Diffusers, "act_fn");
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(_activation(norm1.call(input)));
        h = conv2.call(_activation(norm2.call(h)));
        var shortcut = conv_shortcut is null ? input : conv_shortcut.call(input);
        return shortcut.add(h).MoveToOuterDisposeScope();
    }
}
