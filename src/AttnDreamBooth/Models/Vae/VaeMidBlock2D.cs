using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>The bottleneck of encoder and decoder (diffusers <c>UNetMidBlock2D</c> without time embedding):
/// <c>resnets.0 → attentions.0 → resnets.1</c> at the lowest resolution.</summary>
internal sealed class VaeMidBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<VaeResnetBlock2D> resnets;
    private readonly ModuleList<VaeAttention> attentions;

    public VaeMidBlock2D(int channels, int groups, string actFn, bool addAttention, Device? device) : base(nameof(VaeMidBlock2D))
    {
        resnets = nn.ModuleList(
            new VaeResnetBlock2D(channels, channels, groups, actFn, device),
            new VaeResnetBlock2D(channels, channels, groups, actFn, device));
        attentions = addAttention ? nn.ModuleList(new VaeAttention(channels, groups, device)) : nn.ModuleList<VaeAttention>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].call(input);
        foreach (var attention in attentions) h = attention.call(h);
        h = resnets[1].call(h);
        return h.MoveToOuterDisposeScope();
    }
}
