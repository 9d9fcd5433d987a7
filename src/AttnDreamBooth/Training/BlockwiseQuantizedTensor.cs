using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Training;

/// <summary>
/// A float32 tensor of n elements held in 8 bits per element, block-wise: consecutive blocks of
/// <see cref="BlockSize"/> elements (the last one may be shorter) each keep their absolute maximum as a float32 scale,
/// and every element the index of the nearest <see cref="DynamicQuantizationMap"/> value to element / scale. Memory:
/// n bytes + 4·⌈n / 256⌉ bytes. Written with tensor operations only, so it lives on any device; on the CPU the optimizer
/// reaches the same codes and scales through <see cref="AdamW8BitCpuKernel"/>, which repeats these operations bit for
/// bit, and this path is its reference.
/// </summary>
internal sealed class BlockwiseQuantizedTensor : IDisposable
{
    /// <summary>Elements per scale (bitsandbytes' block size for its 8-bit optimizers).</summary>
    public const int BlockSize = 256;

    private BlockwiseQuantizedTensor(Tensor codes, Tensor absmax, bool signed)
    {
        Codes = codes;
        Absmax = absmax;
        Signed = signed;
    }

    /// <summary>The codes, uint8 [n].</summary>
    public Tensor Codes { get; }

    /// <summary>Each block's absolute maximum, float32 [⌈n / 256⌉].</summary>
    public Tensor Absmax { get; }

    /// <summary>Whether the signed map is used (first moment) or the unsigned one (second moment).</summary>
    public bool Signed { get; }

    /// <summary>Number of elements.</summary>
    public long Count => Codes.NumberOfElements;

    /// <summary>Bytes held (codes and scales).</summary>
    public long Bytes => Codes.NumberOfElements * Codes.ElementSize + Absmax.NumberOfElements * Absmax.ElementSize;

    /// <summary>Number of blocks for <paramref name="count"/> elements.</summary>
    public static long BlockCount(long count) => (count + BlockSize - 1) / BlockSize;

    /// <summary>Bytes of the quantized form of <paramref name="count"/> elements.</summary>
    public static long BytesFor(long count) => count + 4 * BlockCount(count);

    /// <summary>All zeros on <paramref name="device"/>.</summary>
    public static BlockwiseQuantizedTensor Zeros(long count, bool signed, Device device)
    {
        byte zeroCode = (byte)IndexOfZero(DynamicQuantizationMap.For(signed));
        return new BlockwiseQuantizedTensor(
            full([count], Kept(zeroCode), dtype: ScalarType.Byte, device: device).DetachFromDisposeScope(),
            zeros([BlockCount(count)], dtype: ScalarType.Float32, device: device).DetachFromDisposeScope(),
            signed);
    }

    /// <summary>Takes over copies of stored codes and scales (validated by the caller) on <paramref name="device"/>.</summary>
    public static BlockwiseQuantizedTensor FromStored(Tensor codes, Tensor absmax, bool signed, Device device) =>
        new(codes.to(ScalarType.Byte, device).clone().DetachFromDisposeScope(), absmax.to(ScalarType.Float32, device).clone().DetachFromDisposeScope(), signed);

    /// <summary>The float32 values, [n] (a new tensor in the current dispose scope).</summary>
    public Tensor Dequantize(QuantizationMaps maps)
    {
        var values = maps.Values(Signed, Codes.device).index_select(0, Codes.to_type(ScalarType.Int32));
        ForEachBlockGroup(values, Absmax, (block, scale) => block.mul_(scale));
        return values;
    }

    /// <summary>Replaces the stored values by <paramref name="values"/> (float32, n elements, any shape): new scales,
    /// then the nearest code for every element.</summary>
    public void Quantize(Tensor values, QuantizationMaps maps)
    {
        using var scope = NewDisposeScope();
        var flat = values.reshape(-1);
        if (flat.NumberOfElements != Count) throw new ArgumentException($"Expected {Count} values, got {flat.NumberOfElements}.", nameof(values));
        long full = Count / BlockSize, tail = Count - full * BlockSize;
        var magnitude = flat.abs();
        var parts = new List<Tensor>(2);
        if (full > 0) parts.Add(magnitude.narrow(0, 0, full * BlockSize).view(full, BlockSize).amax([1]));
        if (tail > 0) parts.Add(magnitude.narrow(0, full * BlockSize, tail).amax([0], keepdim: true));
        var absmax = parts.Count == 1 ? parts[0] : cat(parts, 0);
        Absmax.copy_(absmax);
        // An all-zero block has scale 0; dividing by 1 instead keeps its codes at exactly 0 (0 · scale on the way back).
        var divisor = where(absmax.eq(Kept(0)), ones_like(absmax), absmax);
        var normalized = flat.clone();
        ForEachBlockGroup(normalized, divisor, (block, scale) => block.div_(scale));
        Codes.copy_(normalized.bucketize(maps.Boundaries(Signed, Codes.device), outInt32: true));
    }

    /// <summary>Applies <paramref name="op"/> to the full blocks (as [blocks, 256] with scales [blocks, 1]) and to the
    /// shorter last block, so no padded copy of the data is needed.</summary>
    private static void ForEachBlockGroup(Tensor flat, Tensor scales, Action<Tensor, Tensor> op)
    {
        long n = flat.NumberOfElements, full = n / BlockSize, tail = n - full * BlockSize;
        if (full > 0) op(flat.narrow(0, 0, full * BlockSize).view(full, BlockSize), scales.narrow(0, 0, full).unsqueeze(1));
        if (tail > 0) op(flat.narrow(0, full * BlockSize, tail), scales.narrow(0, full, 1));
    }

    private static int IndexOfZero(IReadOnlyList<float> map)
    {
        for (int i = 0; i < map.Count; i++)
        {
            if (map[i] == 0) return i;
        }
        throw new InvalidOperationException("The quantization map has no zero.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Codes.Dispose();
        Absmax.Dispose();
    }
}
