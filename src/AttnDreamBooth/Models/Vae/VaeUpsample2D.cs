using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>The decoder's upsampler (diffusers <c>Upsample2D</c> with a conv): nearest-neighbour x2, then a 3x3
/// convolution with padding 1.</summary>
internal sealed class VaeUpsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    public VaeUpsample2D(int channels, Device? device) : base(nameof(VaeUpsample2D))
    {
        conv = nn.Conv2d(channels, channels, kernel_size: 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var upsampled = nn.functional.interpolate(input, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return conv.call(upsampled).MoveToOuterDisposeScope();
    }
}
