using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

/// <summary>diffusers' <c>CrossAttnDownBlock2D</c>: (resnet, transformer) pairs, then an optional downsampler.</summary>
internal sealed class CrossAttnDownBlock2D : UNetDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <summary>Creates the block.</summary>
    public CrossAttnDownBlock2D(int inChannels, int outChannels, int tembChannels, int layers, int transformerLayers, int heads,
        int crossAttentionDim, int groups, double eps, bool addDownsample, int downsamplePadding, bool useLinearProjection,
        bool upcastAttention, double dropout = 0.0, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(CrossAttnDownBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps, dropout, 1.0, device, activation)).ToArray());
        attentions = new ModuleList<Transformer2DModel>(Enumerable.Range(0, layers)
            .Select(_ => new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, crossAttentionDim, groups,
                useLinearProjection, upcastAttention, dropout, device)).ToArray());
        if (addDownsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outChannels, outChannels, downsamplePadding, device));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override bool HasDownsampler => downsamplers is not null;

    /// <inheritdoc />
    public override DownBlockOutput forward(Tensor hiddenStates, Tensor temb, Tensor? encoderHiddenStates)
    {
        ArgumentNullException.ThrowIfNull(encoderHiddenStates);
        var states = new List<Tensor>();
        var h = hiddenStates;
        for (int i = 0; i < resnets.Count; i++)
        {
            h = resnets[i].call(h, temb);
            h = attentions[i].call(h, encoderHiddenStates);
            states.Add(h);
        }
        if (downsamplers is not null)
        {
            foreach (var down in downsamplers) h = down.call(h);
            states.Add(h);
        }
        return new DownBlockOutput(h, states);
    }
}
