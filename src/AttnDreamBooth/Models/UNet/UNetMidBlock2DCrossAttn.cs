using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.UNet;

/// <summary>diffusers' <c>UNetMidBlock2DCrossAttn</c>: resnet, then (transformer, resnet) per layer.</summary>
internal sealed class UNetMidBlock2DCrossAttn : Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;

    /// <summary>Creates the block.</summary>
    public UNetMidBlock2DCrossAttn(int channels, int tembChannels, int heads, int crossAttentionDim, int groups, double eps,
        double outputScaleFactor, bool useLinearProjection, bool upcastAttention, int layers = 1, int transformerLayers = 1,
        double dropout = 0.0, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(UNetMidBlock2DCrossAttn))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers + 1)
            .Select(_ => new ResnetBlock2D(channels, channels, tembChannels, groups, eps, dropout, outputScaleFactor, device, activation)).ToArray());
        attentions = new ModuleList<Transformer2DModel>(Enumerable.Range(0, layers)
            .Select(_ => new Transformer2DModel(heads, channels / heads, channels, transformerLayers, crossAttentionDim, groups,
                useLinearProjection, upcastAttention, dropout, device)).ToArray());
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hiddenStates, Tensor temb, Tensor encoderHiddenStates)
    {
        var h = resnets[0].call(hiddenStates, temb);
        for (int i = 0; i < attentions.Count; i++)
        {
            h = attentions[i].call(h, encoderHiddenStates);
            h = resnets[i + 1].call(h, temb);
        }
        return h;
    }
}
