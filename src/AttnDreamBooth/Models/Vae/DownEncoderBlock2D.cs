using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>One encoder level (diffusers <c>DownEncoderBlock2D</c>): <c>resnets.N</c>, then
/// <c>downsamplers.0</c> on every level but the last.</summary>
internal sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<VaeResnetBlock2D> resnets;
    private readonly ModuleList<VaeDownsample2D> downsamplers;

    public DownEncoderBlock2D(int inChannels, int outChannels, int layers, bool addDownsample, int groups, string actFn, Device? device)
        : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => new VaeResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, actFn, device)).ToArray());
        downsamplers = addDownsample ? nn.ModuleList(new VaeDownsample2D(outChannels, device)) : nn.ModuleList<VaeDownsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var resnet in resnets) h = resnet.call(h);
        foreach (var downsampler in downsamplers) h = downsampler.call(h);
        return h.MoveToOuterDisposeScope();
    }
}
