using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>One decoder level (diffusers <c>UpDecoderBlock2D</c>): <c>resnets.N</c> (layers_per_block + 1 of
/// them), then <c>upsamplers.0</c> on every level but the last.</summary>
internal sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<VaeResnetBlock2D> resnets;
    private readonly ModuleList<VaeUpsample2D> upsamplers;

    public UpDecoderBlock2D(int inChannels, int outChannels, int layers, bool addUpsample, int groups, string actFn, Device? device)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => new VaeResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, actFn, device)).ToArray());
        upsamplers = addUpsample ? nn.ModuleList(new VaeUpsample2D(outChannels, device)) : nn.ModuleList<VaeUpsample2D>();
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var resnet in resnets) h = resnet.call(h);
        foreach (var upsampler in upsamplers) h = upsampler.call(h);
        return h.MoveToOuterDisposeScope();
    }
}
