using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>diffusers' <c>Upsample2D</c> with a conv: nearest-neighbour x2 (or to an explicit size), then a 3x3 conv.</summary>
internal sealed class Upsample2D : Module<Tensor, long[]?, Tensor>
{
    private readonly Conv2d conv;

    /// <summary>Creates the upsampler.</summary>
    public Upsample2D(int channels, int outChannels, Device? device = null) : base(nameof(Upsample2D))
    {
        conv = Conv2d(channels, outChannels, 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    /// <summary>Upsamples <paramref name="input"/>; <paramref name="outputSize"/> (H, W) overrides the factor 2 when the
    /// skip connection's size is not exactly twice the input's.</summary>
    public override Tensor forward(Tensor input, long[]? outputSize)
    {
        using var scope = NewDisposeScope();
        var up = outputSize is null
            ? functional.interpolate(input, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest)
            : functional.interpolate(input, size: outputSize, mode: InterpolationMode.Nearest);
        return NarrowChannelConvolution.Apply(conv, up).MoveToOuterDisposeScope();
    }
}
