using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Attention;

/// <summary>The two attention kernels shared by the built-in processors. Inputs are <c>[B, heads, tokens, head_dim]</c>.</summary>
internal static class AttentionMath
{
    private static bool IsHalf(Tensor t) => t.dtype is ScalarType.Float16 or ScalarType.BFloat16;

    /// <summary>libtorch's fused kernel (scale = head_dim^-0.5, what Stable Diffusion uses).</summary>
    public static Tensor Fused(Tensor q, Tensor k, Tensor v, bool upcast)
    {
        if (upcast && IsHalf(q))
        {
            var dtype = q.dtype;
            return nn.functional.scaled_dot_product_attention(q.to_type(ScalarType.Float32), k.to_type(ScalarType.Float32), v.to_type(ScalarType.Float32)).to_type(dtype);
        }
        return nn.functional.scaled_dot_product_attention(q, k, v);
    }

    /// <summary>Explicit <c>softmax(q k^T * scale) v</c>; returns the output and the probabilities
    /// <c>[B, heads, queries, keys]</c>. Half inputs are computed in float32 (the probabilities stay float32).</summary>
    public static (Tensor Output, Tensor Probabilities) Explicit(Tensor q, Tensor k, Tensor v, double scale)
    {
        var dtype = v.dtype;
        if (IsHalf(q))
        {
            q = q.to_type(ScalarType.Float32);
            k = k.to_type(ScalarType.Float32);
            v = v.to_type(ScalarType.Float32);
        }
        // Scaling q (head_dim wide) is cheaper than scaling the scores (keys wide) when keys > head_dim.
        var scores = BatchedMatrixProduct(q.mul(Kept(scale)), k.transpose(-1, -2));
        var probs = scores.softmax(-1);
        var output = BatchedMatrixProduct(probs, v);
        return (output.dtype == dtype ? output : output.to_type(dtype), probs);
    }

    /// <summary><c>a @ b</c> for <c>[B, heads, n, m] @ [B, heads, m, p]</c>, computed as libtorch's <c>matmul</c> computes it
    /// (the batch dimensions folded into one <c>bmm</c>), so results are bit-identical. TorchSharp's <c>matmul</c> does not
    /// catch native errors: an allocation failure there ends the process, while <c>bmm</c> raises it as an exception.</summary>
    internal static Tensor BatchedMatrixProduct(Tensor a, Tensor b)
    {
        long n = a.shape[^2], m = a.shape[^1], p = b.shape[^1];
        long[] shape = [.. a.shape[..^2], n, p];
        return a.reshape(-1, n, m).bmm(b.reshape(-1, m, p)).view(shape);
    }
}
