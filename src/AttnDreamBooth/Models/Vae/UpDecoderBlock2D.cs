using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>One decoder level (diffusers <c>UpDecoderBlock2D</c>): <c>resnets.N</c> (layers_per_block + 1 of
/// them), then <c>upsamplers.0</c> on every level but the last.</summary>
internal sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D> upsamplers;

    public UpDecoderBlock2D(int inChannels, int outChannels, int layers, bool addUpsample, int groups, Func<Tensor, Tensor> activation, Device? device)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => VaeResnet.Create(i == 0 ? inChannels : outChannels, outChannels, groups, activation, device)).ToArray());
        upsamplers = addUpsample ? nn.ModuleList(new Upsample2D(outChannels, outChannels, device)) : nn.ModuleList<Upsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var resnet in resnets) h = resnet.call(h, null);
        foreach (var upsampler in upsamplers) h = upsampler.call(h, null);
        return h.MoveToOuterDisposeScope();
    }
}
