using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

using Attention = AttnDreamBooth.Models.Attention.Attention;

/// <summary>The bottleneck of encoder and decoder (diffusers <c>UNetMidBlock2D</c> without time embedding):
/// <c>resnets.0 → attentions.0 → resnets.1</c> at the lowest resolution. The attention is the shared layer with a
/// single head and its own GroupNorm; older checkpoints' names for its projections are renamed at load (<see cref="VaeWeightNames"/>).</summary>
internal sealed class VaeMidBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Attention> attentions;

    public VaeMidBlock2D(int channels, int groups, Func<Tensor, Tensor> activation, bool addAttention, Device? device) : base(nameof(VaeMidBlock2D))
    {
        resnets = nn.ModuleList(
            VaeResnet.Create(channels, channels, groups, activation, device),
            VaeResnet.Create(channels, channels, groups, activation, device));
        attentions = addAttention ? nn.ModuleList(Attention.SpatialSelfAttention(channels, groups, VaeConstants.NormEps, device)) : nn.ModuleList<Attention>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].call(input, null);
        foreach (var attention in attentions) h = attention.call(h, null, null);
        h = resnets[1].call(h, null);
        return h.MoveToOuterDisposeScope();
    }
}
