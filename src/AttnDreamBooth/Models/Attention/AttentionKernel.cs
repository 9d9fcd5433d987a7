namespace AttnDreamBooth.Models.Attention;

/// <summary>Which computation an attention processor used for one call (reported for diagnostics and tests).</summary>
internal enum AttentionKernel
{
    /// <summary>libtorch's fused <c>scaled_dot_product_attention</c>; no probability matrix is materialised.</summary>
    Fused,

    /// <summary>Explicit <c>softmax(Q K^T * scale) V</c>, materialising the [B, heads, queries, keys] probabilities.</summary>
    ExplicitSoftmax,
}
