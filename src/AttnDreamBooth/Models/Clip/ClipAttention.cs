using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>Multi-head self-attention of a CLIP encoder layer (<c>self_attn</c>: <c>q_proj</c>, <c>k_proj</c>,
/// <c>v_proj</c>, <c>out_proj</c>, all biased), scale <c>head_dim^-0.5</c>; causal in the text tower.</summary>
internal sealed class ClipAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear out_proj;
    private readonly int _heads;
    private readonly bool _causal;

    public ClipAttention(ClipEncoderSpec spec, Device? device) : base("self_attn")
    {
        _heads = spec.NumAttentionHeads;
        _causal = spec.Causal;
        q_proj = nn.Linear(spec.HiddenSize, spec.HiddenSize, hasBias: true, device: device);
        k_proj = nn.Linear(spec.HiddenSize, spec.HiddenSize, hasBias: true, device: device);
        v_proj = nn.Linear(spec.HiddenSize, spec.HiddenSize, hasBias: true, device: device);
        out_proj = nn.Linear(spec.HiddenSize, spec.HiddenSize, hasBias: true, device: device);
        RegisterComponents();
    }

    /// <param name="hiddenStates">[B, T, C].</param>
    /// <param name="additiveMask">null for the tower's own mask (causal or none), else a float mask [B, 1, T, T] that
    /// already holds every restriction, e.g. causal and padding (0 = attend, large negative = blocked).</param>
    public override Tensor forward(Tensor hiddenStates, Tensor? additiveMask)
    {
        using var scope = torch.NewDisposeScope();
        long batch = hiddenStates.shape[0], length = hiddenStates.shape[1], channels = hiddenStates.shape[2];
        Tensor Heads(Tensor x) => x.view(batch, length, _heads, channels / _heads).transpose(1, 2);
        var q = Heads(q_proj.call(hiddenStates));
        var k = Heads(k_proj.call(hiddenStates));
        var v = Heads(v_proj.call(hiddenStates));
        var attended = additiveMask is not null
            ? nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: additiveMask)
            : nn.functional.scaled_dot_product_attention(q, k, v, is_casual: _causal);
        var merged = attended.transpose(1, 2).reshape(batch, length, channels);
        return out_proj.call(merged).MoveToOuterDisposeScope();
    }
}
