using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers <c>CLIPEncoder</c>: the stack of <see cref="ClipVisionEncoderLayer"/> under <c>layers.{i}</c>.</summary>
internal sealed class ClipVisionEncoder : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    private readonly ModuleList<ClipVisionEncoderLayer> layers;
#pragma warning restore IDE1006

    /// <summary>Creates the encoder with parameters on <paramref name="device"/>.</summary>
    public ClipVisionEncoder(ClipVisionConfig config, torch.Device? device = null) : base("encoder")
    {
        layers = new ModuleList<ClipVisionEncoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipVisionEncoderLayer(config, device)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs every layer.</summary>
    public override torch.Tensor forward(torch.Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = x;
        foreach (var layer in layers) h = layer.call(h);
        return h.MoveToOuterDisposeScope();
    }
}
