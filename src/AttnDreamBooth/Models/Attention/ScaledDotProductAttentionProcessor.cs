using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// The default processor: projections, then libtorch's fused <c>scaled_dot_product_attention</c> (no probability
/// matrix is materialised), then the output projection. Stateless; <see cref="Instance"/> can serve every layer.
/// With <see cref="Attention.UpcastAttention"/> and half-precision inputs the kernel runs in float32.
/// </summary>
public sealed class ScaledDotProductAttentionProcessor : IAttentionProcessor
{
    /// <summary>The shared instance (the processor holds no state).</summary>
    public static ScaledDotProductAttentionProcessor Instance { get; } = new();

    /// <inheritdoc />
    public Tensor Process(Attention attn, Tensor hiddenStates, Tensor? encoderHiddenStates, AttentionContext context)
    {
        ArgumentNullException.ThrowIfNull(attn);
        var (q, k, v) = attn.ProjectHeads(hiddenStates, encoderHiddenStates);
        return attn.ProjectOut(AttentionMath.Fused(q, k, v, attn.UpcastAttention));
    }
}
