using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>diffusers' <c>Downsample2D</c> with a conv: 3x3, stride 2, padding <c>downsample_padding</c>
/// (with padding 0 the input is first padded by one on the right and bottom, as diffusers does).</summary>
internal sealed class Downsample2D : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly int _padding;

    /// <summary>Creates the downsampler.</summary>
    public Downsample2D(int channels, int outChannels, int padding, Device? device = null) : base(nameof(Downsample2D))
    {
        _padding = padding;
        conv = Conv2d(channels, outChannels, 3, stride: 2, padding: padding, device: device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (_padding != 0) return NarrowChannelConvolution.Apply(conv, input, stride: 2, padding: _padding);
        using var padded = functional.pad(input, [0, 1, 0, 1]);
        return NarrowChannelConvolution.Apply(conv, padded, stride: 2, padding: 0);
    }
}
