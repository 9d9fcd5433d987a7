using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The mid-block self-attention of the VAE (diffusers <c>Attention</c> built from the deprecated attention
/// block): GroupNorm, then ONE head over all channels (scale C^-1/2) with biased <c>to_q</c>/<c>to_k</c>/
/// <c>to_v</c>/<c>to_out.0</c>, plus the input. Older checkpoints name the projections
/// <c>query</c>/<c>key</c>/<c>value</c>/<c>proj_attn</c>; <see cref="VaeWeightNames"/> renames them at load.
/// </summary>
internal sealed class VaeAttention : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm group_norm;
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<Linear> to_out;

    public VaeAttention(int channels, int groups, Device? device) : base(nameof(VaeAttention))
    {
        group_norm = AttnDreamBooth.Models.Blocks.GroupNormalization.Create(groups, channels, VaeConstants.NormEps, device);
        to_q = nn.Linear(channels, channels, hasBias: true, device: device);
        to_k = nn.Linear(channels, channels, hasBias: true, device: device);
        to_v = nn.Linear(channels, channels, hasBias: true, device: device);
        // diffusers' to_out is [Linear, Dropout]; the dropout has no weights, so index 0 alone keeps the names.
        to_out = nn.ModuleList(nn.Linear(channels, channels, hasBias: true, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4) throw new ArgumentException($"VAE attention expects [B, C, H, W], got [{string.Join(", ", input.shape)}].", nameof(input));
        using var scope = NewDisposeScope();
        long b = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3];
        // GroupNorm over [B, C, H, W] equals the reference's GroupNorm over [B, C, H*W].
        var tokens = group_norm.call(input).reshape(b, c, h * w).transpose(1, 2);
        var q = to_q.call(tokens).unsqueeze(1);
        var k = to_k.call(tokens).unsqueeze(1);
        var v = to_v.call(tokens).unsqueeze(1);
        // SDPA scales by head_dim^-1/2 = C^-1/2 for the single head, which is the reference's scale.
        var attended = nn.functional.scaled_dot_product_attention(q, k, v).squeeze(1);
        var projected = to_out[0].call(attended);
        var spatial = projected.transpose(1, 2).reshape(b, c, h, w);
        return spatial.add(input).MoveToOuterDisposeScope();
    }
}
