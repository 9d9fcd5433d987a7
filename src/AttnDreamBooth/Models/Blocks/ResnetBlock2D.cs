using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> (default time-embedding shift): GroupNorm → activation → 3x3 conv, plus
/// <c>time_emb_proj(activation(temb))</c> per channel when the block has a time embedding (the U-Net's; the VAE's have
/// none), GroupNorm → activation → dropout → 3x3 conv, added to the input (through a 1x1 <c>conv_shortcut</c> when the
/// channel count changes), divided by the output scale factor.
/// </summary>
internal sealed class ResnetBlock2D : Module<Tensor, Tensor?, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Linear? time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Dropout dropout;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;
    private readonly double _outputScaleFactor;
    private readonly Func<Tensor, Tensor> _activation;
    private readonly bool _silu;

    /// <summary>Creates the block.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="tembChannels">Width of the time embedding, or null for a block without one (no <c>time_emb_proj</c>).</param>
    /// <param name="groups">GroupNorm groups.</param>
    /// <param name="eps">GroupNorm epsilon.</param>
    /// <param name="dropoutProbability">Dropout before <c>conv2</c>.</param>
    /// <param name="outputScaleFactor">The output is divided by it.</param>
    /// <param name="device">Where the parameters are created.</param>
    /// <param name="activation">The nonlinearity (<see cref="Activations"/>; SiLU when null).</param>
    public ResnetBlock2D(int inChannels, int outChannels, int? tembChannels, int groups, double eps, double dropoutProbability = 0.0,
        double outputScaleFactor = 1.0, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(ResnetBlock2D))
    {
        norm1 = GroupNormalization.Create(groups, inChannels, eps, device);
        conv1 = Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1, device: device);
        if (tembChannels is { } temb) time_emb_proj = Linear(temb, outChannels, device: device);
        norm2 = GroupNormalization.Create(groups, outChannels, eps, device);
        dropout = Dropout(dropoutProbability);
        conv2 = Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, device: device);
        if (inChannels != outChannels)
        {
            conv_shortcut = Conv2d(inChannels, outChannels, 1, device: device);
            Nnpack.TurnOff();
        }
        _outputScaleFactor = outputScaleFactor;
        _activation = activation ?? (x => functional.silu(x));
        _silu = activation is null;
        RegisterComponents();
    }

    /// <summary>Applies the block to <paramref name="input"/> <c>[B, C, H, W]</c> with time embedding <paramref name="temb"/>
    /// <c>[B, T]</c> (required by a block with a time embedding, ignored by one without).</summary>
    public override Tensor forward(Tensor input, Tensor? temb)
    {
        using var scope = NewDisposeScope();
        bool inPlace = _silu && ExecutionSwitches.InPlaceResnet;
        var h = Convolve(conv1, Activate(norm1.call(input), inPlace));
        if (time_emb_proj is not null)
        {
            ArgumentNullException.ThrowIfNull(temb);
            h = h.add(time_emb_proj.call(_activation(temb)).unsqueeze(-1).unsqueeze(-1), One);
        }
        h = Convolve(conv2, dropout.call(Activate(norm2.call(h), inPlace)));
        var shortcut = conv_shortcut is null ? input : conv_shortcut.call(input);
        var output = inPlace ? h.add_(shortcut, One) : shortcut.add(h, One);
        if (_outputScaleFactor != 1.0) output = output.div(Kept(_outputScaleFactor));
        return output.MoveToOuterDisposeScope();
    }

    // A 3×3, stride-1, padding-1 convolution as unfold + one matmul (same result up to float summation order).
    private static Tensor Convolve(Conv2d conv, Tensor x)
    {
        int limit = ExecutionSwitches.MatmulConvolutionMaxPixels;
        if (limit <= 0 || x.shape[2] * x.shape[3] > limit) return NarrowChannelConvolution.Apply(conv, x);
        var weight = conv.weight!;
        var columns = functional.unfold(x, 3, padding: 1);
        var y = weight.view(weight.shape[0], -1).matmul(columns);
        if (conv.bias is { } bias) y = y.add(bias.view(1, -1, 1), One);
        return y.view(x.shape[0], weight.shape[0], x.shape[2], x.shape[3]);
    }

    private Tensor Activate(Tensor x, bool inPlace) => inPlace ? functional.silu(x, inplace: true) : _activation(x);
}
