using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

/// <summary>A parameter (or its float32 master copy), its float32 gradient and its two 8-bit moments.</summary>
internal readonly record struct AdamW8BitTensors(Tensor Param, Tensor Grad, BlockwiseQuantizedTensor ExpAvg, BlockwiseQuantizedTensor ExpAvgSq);

/// <summary>
/// The fused 8-bit AdamW step for parameters the CPU kernel can reach: <see cref="AdamW8BitCpuKernel"/> over chunks of
/// whole blocks spread over <c>torch.get_num_threads()</c> workers. Blocks are runs of consecutive elements in the
/// parameter's logical (row-major) order, so parameter and gradient must be contiguous; other layouts and devices keep
/// the tensor-operation path (dequantize, update, quantize), of which this is a bit-identical replacement.
/// </summary>
/// <remarks>The choice depends only on the tensors' device, dtype and contiguity, which a resumed run reproduces
/// (restored codes and scales are contiguous, as fresh ones), so a resume follows the same path.</remarks>
internal static class AdamW8BitOnePassUpdate
{
    /// <summary>Elements per unit of parallel work: a whole number of blocks.</summary>
    internal const long ChunkElements = AdamWOnePassUpdate.ChunkElements;

    private readonly record struct KernelItem(nint Param, nint Grad, nint ExpAvgCodes, nint ExpAvgAbsmax, nint ExpAvgSqCodes, nint ExpAvgSqAbsmax, long Count);

    /// <summary>Whether <paramref name="t"/> can take the fused kernel.</summary>
    public static bool Supports(AdamW8BitTensors t)
    {
        foreach (var x in new[] { t.Param, t.Grad })
        {
            if (x.device_type != DeviceType.CPU || x.dtype != ScalarType.Float32 || !x.is_contiguous() || x.NumberOfElements != t.ExpAvg.Count) return false;
        }
        foreach (var q in new[] { t.ExpAvg, t.ExpAvgSq })
        {
            if (q.Codes.device_type != DeviceType.CPU || !q.Codes.is_contiguous() || !q.Absmax.is_contiguous() || q.Count != t.ExpAvg.Count) return false;
        }
        return t.ExpAvg.Signed && !t.ExpAvgSq.Signed;
    }

    /// <summary>Updates every entry of <paramref name="items"/> in place (each must pass <see cref="Supports"/>).</summary>
    public static unsafe void Apply(IReadOnlyList<AdamW8BitTensors> items, in AdamWStepScalars s)
    {
        var work = new List<KernelItem>(items.Count);
        using (var scope = NewDisposeScope())
        {
            foreach (var t in items)
            {
                if (!Supports(t)) throw new ArgumentException("The fused 8-bit AdamW kernel needs contiguous CPU float32 parameter and gradient.", nameof(items));
                if (t.ExpAvg.Count == 0) continue;
                work.Add(new KernelItem(
                    AdamWOnePassUpdate.DataPointer(t.Param), AdamWOnePassUpdate.DataPointer(t.Grad),
                    AdamWOnePassUpdate.DataPointer(t.ExpAvg.Codes), AdamWOnePassUpdate.DataPointer(t.ExpAvg.Absmax),
                    AdamWOnePassUpdate.DataPointer(t.ExpAvgSq.Codes), AdamWOnePassUpdate.DataPointer(t.ExpAvgSq.Absmax),
                    t.ExpAvg.Count));
            }
        }
        if (work.Count == 0) return;
        var scalars = s;
        ChunkedParallel.For(work.Select(w => w.Count).ToArray(), ChunkElements, (item, start, count) => Run(work[item], start, count, scalars));
    }

    private static unsafe void Run(KernelItem w, long start, long count, in AdamWStepScalars s)
    {
        long block = start / BlockwiseQuantizedTensor.BlockSize;
        AdamW8BitCpuKernel.Update(
            (float*)w.Param + start, (float*)w.Grad + start,
            (byte*)w.ExpAvgCodes + start, (float*)w.ExpAvgAbsmax + block,
            (byte*)w.ExpAvgSqCodes + start, (float*)w.ExpAvgSqAbsmax + block,
            count, s);
    }
}
