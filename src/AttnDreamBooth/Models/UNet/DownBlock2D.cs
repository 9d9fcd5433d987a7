using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

/// <summary>diffusers' <c>DownBlock2D</c>: resnets, then an optional downsampler; no attention.</summary>
internal sealed class DownBlock2D : UNetDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <summary>Creates the block.</summary>
    public DownBlock2D(int inChannels, int outChannels, int tembChannels, int layers, int groups, double eps, bool addDownsample,
        int downsamplePadding, double dropout = 0.0, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(DownBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, eps, dropout, 1.0, device, activation)).ToArray());
        if (addDownsample) downsamplers = new ModuleList<Downsample2D>(new Downsample2D(outChannels, outChannels, downsamplePadding, device));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override bool HasDownsampler => downsamplers is not null;

    /// <inheritdoc />
    public override DownBlockOutput forward(Tensor hiddenStates, Tensor temb, Tensor? encoderHiddenStates)
    {
        var states = new List<Tensor>();
        var h = hiddenStates;
        foreach (var resnet in resnets)
        {
            h = resnet.call(h, temb);
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
