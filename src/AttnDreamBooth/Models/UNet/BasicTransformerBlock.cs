using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.UNet;

using Attention = AttnDreamBooth.Models.Attention.Attention;

/// <summary>
/// diffusers' <c>BasicTransformerBlock</c> as Stable Diffusion uses it (pre-LayerNorm, eps 1e-5): self-attention
/// <c>attn1</c>, cross-attention <c>attn2</c> over the text states, GEGLU feed-forward <c>ff</c>; each with a residual.
/// </summary>
internal sealed class BasicTransformerBlock : Module<Tensor, Tensor, AttentionContext, Tensor>
{
    private const double LayerNormEps = 1e-5;
    private readonly LayerNorm norm1;
    private readonly Attention attn1;
    private readonly LayerNorm norm2;
    private readonly Attention attn2;
    private readonly LayerNorm norm3;
    private readonly FeedForward ff;

    /// <summary>Creates the block.</summary>
    public BasicTransformerBlock(int dim, int heads, int headDim, int crossAttentionDim, bool upcastAttention, double dropout = 0.0, Device? device = null)
        : base(nameof(BasicTransformerBlock))
    {
        norm1 = LayerNorm(dim, LayerNormEps, elementwise_affine: true, device: device);
        attn1 = new Attention(dim, null, heads, headDim, dropout, bias: false, upcastAttention, device);
        norm2 = LayerNorm(dim, LayerNormEps, elementwise_affine: true, device: device);
        attn2 = new Attention(dim, crossAttentionDim, heads, headDim, dropout, bias: false, upcastAttention, device);
        norm3 = LayerNorm(dim, LayerNormEps, elementwise_affine: true, device: device);
        ff = new FeedForward(dim, 4, dropout, device);
        RegisterComponents();
    }

    /// <summary>Applies the block to tokens <paramref name="hiddenStates"/> <c>[B, H*W, dim]</c>.</summary>
    public override Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates, AttentionContext context)
    {
        using var scope = NewDisposeScope();
        var h = attn1.call(norm1.call(hiddenStates), null, context).add(hiddenStates, One);
        h = attn2.call(norm2.call(h), encoderHiddenStates, context).add(h, One);
        var fed = ff.call(norm3.call(h));
        h = ExecutionSwitches.InPlaceTransformerAdds ? fed.add_(h, One) : fed.add(h, One);
        return h.MoveToOuterDisposeScope();
    }
}
