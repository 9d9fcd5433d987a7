using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

/// <summary>diffusers' <c>CrossAttnUpBlock2D</c>: (resnet over [hidden, skip], transformer) pairs, then an optional upsampler.</summary>
internal sealed class CrossAttnUpBlock2D : UNetUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <summary>Creates the block (channel arguments as for <see cref="UpBlock2D"/>).</summary>
    public CrossAttnUpBlock2D(int inChannels, int outChannels, int prevOutputChannels, int tembChannels, int layers, int transformerLayers,
        int heads, int crossAttentionDim, int groups, double eps, bool addUpsample, bool useLinearProjection, bool upcastAttention,
        double dropout = 0.0, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(CrossAttnUpBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers).Select(i =>
        {
            int skip = i == layers - 1 ? inChannels : outChannels;
            int input = i == 0 ? prevOutputChannels : outChannels;
            return new ResnetBlock2D(input + skip, outChannels, tembChannels, groups, eps, dropout, 1.0, device, activation);
        }).ToArray());
        attentions = new ModuleList<Transformer2DModel>(Enumerable.Range(0, layers)
            .Select(_ => new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, crossAttentionDim, groups,
                useLinearProjection, upcastAttention, dropout, device)).ToArray());
        if (addUpsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outChannels, outChannels, device));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override int ResnetCount => resnets.Count;

    /// <inheritdoc />
    public override bool HasUpsampler => upsamplers is not null;

    /// <inheritdoc />
    public override Tensor forward(Tensor hiddenStates, IReadOnlyList<Tensor> skipStates, Tensor temb, Tensor? encoderHiddenStates, long[]? upsampleSize)
    {
        ArgumentNullException.ThrowIfNull(encoderHiddenStates);
        UpBlockHelpers.CheckSkips(skipStates, resnets.Count);
        var h = hiddenStates;
        for (int i = 0; i < resnets.Count; i++)
        {
            h = resnets[i].call(cat([h, skipStates[skipStates.Count - 1 - i]], 1), temb);
            h = attentions[i].call(h, encoderHiddenStates);
        }
        if (upsamplers is not null)
        {
            foreach (var up in upsamplers) h = up.call(h, upsampleSize);
        }
        return h;
    }
}
