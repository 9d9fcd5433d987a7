using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

/// <summary>The two AdamW moments of one parameter, held either as float32 tensors shaped like the parameter (with its
/// memory layout) or as two <see cref="BlockwiseQuantizedTensor"/>s.</summary>
internal sealed class AdamWMoments : IDisposable
{
    private AdamWMoments(Tensor? expAvg, Tensor? expAvgSq, BlockwiseQuantizedTensor? quantizedExpAvg, BlockwiseQuantizedTensor? quantizedExpAvgSq)
    {
        ExpAvg = expAvg;
        ExpAvgSq = expAvgSq;
        QuantizedExpAvg = quantizedExpAvg;
        QuantizedExpAvgSq = quantizedExpAvgSq;
    }

    /// <summary>First moment, float32 form (null when quantized).</summary>
    public Tensor? ExpAvg { get; }

    /// <summary>Second moment, float32 form (null when quantized).</summary>
    public Tensor? ExpAvgSq { get; }

    /// <summary>First moment, 8-bit form (signed map; null for float32).</summary>
    public BlockwiseQuantizedTensor? QuantizedExpAvg { get; }

    /// <summary>Second moment, 8-bit form (unsigned map; null for float32).</summary>
    public BlockwiseQuantizedTensor? QuantizedExpAvgSq { get; }

    /// <summary>Whether the moments are stored in 8 bits.</summary>
    public bool IsQuantized => QuantizedExpAvg is not null;

    /// <summary>Bytes held by the moments.</summary>
    public long Bytes => IsQuantized
        ? QuantizedExpAvg!.Bytes + QuantizedExpAvgSq!.Bytes
        : ExpAvg!.NumberOfElements * ExpAvg.ElementSize + ExpAvgSq!.NumberOfElements * ExpAvgSq.ElementSize;

    /// <summary>Zero float32 moments laid out like <paramref name="parameter"/> (so the parameter, its gradient and its
    /// moments share one layout and the one-pass kernel applies).</summary>
    public static AdamWMoments ZerosLike(Tensor parameter) =>
        new(zeros_like(parameter, dtype: ScalarType.Float32).DetachFromDisposeScope(), zeros_like(parameter, dtype: ScalarType.Float32).DetachFromDisposeScope(), null, null);

    /// <summary>Restored float32 moments, copied into tensors laid out like <paramref name="parameter"/> exactly as
    /// <see cref="ZerosLike"/> allocates them, so a resumed run takes the same update path as the original one.</summary>
    public static AdamWMoments CopyOf(Tensor parameter, Tensor expAvg, Tensor expAvgSq)
    {
        var m = empty_like(parameter, dtype: ScalarType.Float32).DetachFromDisposeScope();
        var v = empty_like(parameter, dtype: ScalarType.Float32).DetachFromDisposeScope();
        using (no_grad())
        {
            m.copy_(expAvg);
            v.copy_(expAvgSq);
        }
        return new(m, v, null, null);
    }

    /// <summary>Quantized moments.</summary>
    public static AdamWMoments Quantized(BlockwiseQuantizedTensor expAvg, BlockwiseQuantizedTensor expAvgSq) => new(null, null, expAvg, expAvgSq);

    /// <inheritdoc />
    public void Dispose()
    {
        ExpAvg?.Dispose();
        ExpAvgSq?.Dispose();
        QuantizedExpAvg?.Dispose();
        QuantizedExpAvgSq?.Dispose();
    }
}
