using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>One encoder level (diffusers <c>DownEncoderBlock2D</c>): <c>resnets.N</c>, then
/// <c>downsamplers.0</c> on every level but the last. The downsampler pads one zero column on the right and one row at
/// the bottom before its stride-2 convolution (<c>padding=0</c>): the SD VAE was trained so, and symmetric padding shifts the result.</summary>
internal sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D> downsamplers;

    public DownEncoderBlock2D(int inChannels, int outChannels, int layers, bool addDownsample, int groups, Func<Tensor, Tensor> activation, Device? device)
        : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => VaeResnet.Create(i == 0 ? inChannels : outChannels, outChannels, groups, activation, device)).ToArray());
        downsamplers = addDownsample ? nn.ModuleList(new Downsample2D(outChannels, outChannels, padding: 0, device)) : nn.ModuleList<Downsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var resnet in resnets) h = resnet.call(h, null);
        foreach (var downsampler in downsamplers) h = downsampler.call(h);
        return h.MoveToOuterDisposeScope();
    }
}
