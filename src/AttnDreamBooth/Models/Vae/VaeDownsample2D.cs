using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The encoder's downsampler (diffusers <c>Downsample2D</c> with <c>padding=0</c>): pad one zero column on the
/// right and one row at the bottom, then a 3x3 convolution with stride 2 and no padding. This asymmetric
/// padding is what the SD VAE was trained with; symmetric padding 1 gives a shifted result.
/// </summary>
internal sealed class VaeDownsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    public VaeDownsample2D(int channels, Device? device) : base(nameof(VaeDownsample2D))
    {
        conv = nn.Conv2d(channels, channels, kernel_size: 3, stride: 2, padding: 0L, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var padded = nn.functional.pad(input, [0, 1, 0, 1], PaddingModes.Constant, 0.0);
        return conv.call(padded).MoveToOuterDisposeScope();
    }
}
