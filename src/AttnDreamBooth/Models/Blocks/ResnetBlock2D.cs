using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> (default time-embedding shift): GroupNorm → SiLU → 3x3 conv, plus
/// <c>time_emb_proj(SiLU(temb))</c> per channel, GroupNorm → SiLU → dropout → 3x3 conv, added to the input (through a
/// 1x1 <c>conv_shortcut</c> when the channel count changes), divided by the output scale factor.
/// </summary>
internal sealed class ResnetBlock2D : Module<Tensor, Tensor, Tensor>
{
    private readonly GroupNorm norm1;
    private readonly Conv2d conv1;
    private readonly Linear time_emb_proj;
    private readonly GroupNorm norm2;
    private readonly Dropout dropout;
    private readonly Conv2d conv2;
    private readonly Conv2d? conv_shortcut;
    private readonly double _outputScaleFactor;

    /// <summary>Creates the block.</summary>
    public ResnetBlock2D(int inChannels, int outChannels, int tembChannels, int groups, double eps, double dropoutProbability = 0.0,
        double outputScaleFactor = 1.0, Device? device = null) : base(nameof(ResnetBlock2D))
    {
        norm1 = GroupNormalization.Create(groups, inChannels, eps, device);
        conv1 = Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1, device: device);
        time_emb_proj = Linear(tembChannels, outChannels, device: device);
        norm2 = GroupNormalization.Create(groups, outChannels, eps, device);
        dropout = Dropout(dropoutProbability);
        conv2 = Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, device: device);
        if (inChannels != outChannels) conv_shortcut = Conv2d(inChannels, outChannels, 1, device: device);
        _outputScaleFactor = outputScaleFactor;
        RegisterComponents();
    }

    /// <summary>Applies the block to <paramref name="input"/> <c>[B, C, H, W]</c> with time embedding <paramref name="temb"/> <c>[B, T]</c>.</summary>
    public override Tensor forward(Tensor input, Tensor temb)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(functional.silu(norm1.call(input)));
        h = h.add(time_emb_proj.call(functional.silu(temb)).unsqueeze(-1).unsqueeze(-1));
        h = conv2.call(dropout.call(functional.silu(norm2.call(h))));
        var shortcut = conv_shortcut is null ? input : conv_shortcut.call(input);
        var output = shortcut.add(h);
        if (_outputScaleFactor != 1.0) output = output.div(_outputScaleFactor);
        return output.MoveToOuterDisposeScope();
    }
}
