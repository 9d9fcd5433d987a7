namespace AttnDreamBooth.IO.SingleFile;

/// <summary>How one original (LDM) tensor becomes diffusers tensor(s).</summary>
internal enum SingleFileOp
{
    /// <summary>Same values and shape, new name.</summary>
    Copy,

    /// <summary>Same values, the VAE mid-attention 1x1 conv <c>[C, C, 1, 1]</c> becomes a Linear <c>[C, C]</c> (and back).</summary>
    Reshape,

    /// <summary>OpenCLIP's fused <c>in_proj</c> (<c>[3C, C]</c> / <c>[3C]</c>) is split along dim 0 into q, k, v (and concatenated back).</summary>
    SplitDim0,
}
