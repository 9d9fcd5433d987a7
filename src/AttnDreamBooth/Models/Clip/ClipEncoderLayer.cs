using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Clip;

/// <summary>One pre-LayerNorm transformer block (transformers' <c>CLIPEncoderLayer</c>, both towers):
/// <c>x + self_attn(layer_norm1(x))</c>, then <c>x + mlp(layer_norm2(x))</c>.</summary>
internal sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipMlp mlp;
    private readonly LayerNorm layer_norm2;

    public ClipEncoderLayer(ClipEncoderSpec spec, Device? device) : base("layer")
    {
        self_attn = new ClipAttention(spec, device);
        layer_norm1 = nn.LayerNorm(spec.HiddenSize, spec.LayerNormEps, device: device);
        mlp = new ClipMlp(spec, device);
        layer_norm2 = nn.LayerNorm(spec.HiddenSize, spec.LayerNormEps, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hiddenStates, Tensor? additiveMask)
    {
        using var scope = torch.NewDisposeScope();
        var afterAttention = hiddenStates.add(self_attn.call(layer_norm1.call(hiddenStates), additiveMask), One);
        var output = afterAttention.add(mlp.call(layer_norm2.call(afterAttention)), One);
        return output.MoveToOuterDisposeScope();
    }
}
