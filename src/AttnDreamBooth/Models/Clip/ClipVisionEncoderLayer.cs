using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers <c>CLIPEncoderLayer</c> (pre-LayerNorm): x + attn(ln1(x)), then x + mlp(ln2(x)).</summary>
internal sealed class ClipVisionEncoderLayer : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    private readonly ClipVisionAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipVisionMlp mlp;
    private readonly LayerNorm layer_norm2;
#pragma warning restore IDE1006

    /// <summary>Creates the layer with parameters on <paramref name="device"/>.</summary>
    public ClipVisionEncoderLayer(ClipVisionConfig config, torch.Device? device = null) : base("layer")
    {
        self_attn = new ClipVisionAttention(config, device);
        layer_norm1 = torch.nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device);
        mlp = new ClipVisionMlp(config, device);
        layer_norm2 = torch.nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device);
        RegisterComponents();
    }

    /// <summary>Applies the layer to [B, T, C].</summary>
    public override torch.Tensor forward(torch.Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = x + self_attn.call(layer_norm1.call(x));
        return (h + mlp.call(layer_norm2.call(h))).MoveToOuterDisposeScope();
    }
}
