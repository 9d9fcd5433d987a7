using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers <c>CLIPAttention</c> without a mask: multi-head softmax(q k^T / sqrt(d)) v with biased projections.</summary>
internal sealed class ClipVisionAttention : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear out_proj;
#pragma warning restore IDE1006
    private readonly int _heads;

    /// <summary>Creates the attention with parameters on <paramref name="device"/>.</summary>
    public ClipVisionAttention(ClipVisionConfig config, torch.Device? device = null) : base("self_attn")
    {
        int c = config.HiddenSize;
        _heads = config.NumAttentionHeads;
        q_proj = torch.nn.Linear(c, c, device: device);
        k_proj = torch.nn.Linear(c, c, device: device);
        v_proj = torch.nn.Linear(c, c, device: device);
        out_proj = torch.nn.Linear(c, c, device: device);
        RegisterComponents();
    }

    /// <summary>Self-attention over [B, T, C].</summary>
    public override torch.Tensor forward(torch.Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        long d = c / _heads;
        torch.Tensor Split(torch.Tensor y) => y.view(b, t, _heads, d).transpose(1, 2);
        var attended = torch.nn.functional.scaled_dot_product_attention(Split(q_proj.call(x)), Split(k_proj.call(x)), Split(v_proj.call(x)));
        return out_proj.call(attended.transpose(1, 2).reshape(b, t, c)).MoveToOuterDisposeScope();
    }
}
