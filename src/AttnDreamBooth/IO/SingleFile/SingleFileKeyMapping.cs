namespace AttnDreamBooth.IO.SingleFile;

/// <summary>One original key of a single-file checkpoint and the diffusers tensor(s) it holds.</summary>
/// <param name="OriginalKey">The full original key (with its component prefix).</param>
/// <param name="Component">The diffusers component (<see cref="SingleFileComponents"/>).</param>
/// <param name="DiffusersKeys">One key, or three (q, k, v) for <see cref="SingleFileOp.SplitDim0"/>.</param>
/// <param name="Op">How the values move.</param>
internal sealed record SingleFileKeyMapping(string OriginalKey, string Component, IReadOnlyList<string> DiffusersKeys, SingleFileOp Op)
{
    /// <summary>The diffusers shape(s) produced from an original tensor of shape <paramref name="originalShape"/>.</summary>
    /// <exception cref="InvalidWeightsException">The shape does not suit the operation.</exception>
    public long[] DiffusersShape(long[] originalShape)
    {
        switch (Op)
        {
            case SingleFileOp.Copy:
                return originalShape;
            case SingleFileOp.Reshape:
                if (originalShape.Length == 2) return originalShape;
                if (originalShape.Length == 4 && originalShape[2] == 1 && originalShape[3] == 1) return originalShape[..2];
                throw InvalidWeightsException.SingleFile(OriginalKey, $"expected a 1x1 conv weight [C, C, 1, 1], found [{string.Join(", ", originalShape)}]");
            case SingleFileOp.SplitDim0:
                if (originalShape.Length is < 1 or > 2 || originalShape[0] % 3 != 0)
                    throw InvalidWeightsException.SingleFile(OriginalKey, $"expected a fused q/k/v tensor [3C, C] or [3C], found [{string.Join(", ", originalShape)}]");
                var part = (long[])originalShape.Clone();
                part[0] /= 3;
                return part;
            default:
                throw new InvalidOperationException($"Unknown op {Op}.");
        }
    }

    /// <summary>The original shape for diffusers tensor(s) of shape <paramref name="diffusersShape"/> (one part for a split).</summary>
    public long[] OriginalShape(long[] diffusersShape) => Op switch
    {
        SingleFileOp.Copy => diffusersShape,
        SingleFileOp.Reshape => diffusersShape.Length == 2 ? [diffusersShape[0], diffusersShape[1], 1, 1] : diffusersShape,
        SingleFileOp.SplitDim0 => [diffusersShape[0] * 3, .. diffusersShape[1..]],
        _ => throw new InvalidOperationException($"Unknown op {Op}."),
    };
}
