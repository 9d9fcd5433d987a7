using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttnDreamBooth.Training;

/// <summary>
/// The AdamW step with 8-bit block-wise moments in one pass over raw storage: per block of
/// <see cref="BlockwiseQuantizedTensor.BlockSize"/> elements, both moments are dequantized into stack buffers, updated
/// together with the parameter by <see cref="AdamWCpuKernel"/>, and quantized back with fresh block scales; the
/// parameter, gradient and codes are read once and written once (16 bytes of traffic per element), with no temporaries.
/// </summary>
/// <remarks>
/// Each step reproduces the tensor-operation path of <see cref="BlockwiseQuantizedTensor"/> operation for operation, so
/// the results are bit-identical to it: dequantization is the float32 product map[code]·scale; the scale is the block's
/// largest magnitude (NaN if the block holds a NaN, as <c>amax</c> propagates it); a zero scale divides by 1; each
/// element is divided by the scale in float32 and coded by <see cref="NearestCodeLookup"/>, which gives
/// <c>bucketize</c>'s code exactly. The AVX2 body and the scalar tail (and the scalar fallback without AVX2) perform
/// the same IEEE operations, so results do not depend on position, vector support or threading.
/// </remarks>
internal static unsafe class AdamW8BitCpuKernel
{
    private const int BlockSize = BlockwiseQuantizedTensor.BlockSize;

    /// <summary>Updates elements [0, <paramref name="count"/>) in place; the range starts at a block boundary, so
    /// block b of it has its scales at <paramref name="expAvgAbsmax"/>[b] and <paramref name="expAvgSqAbsmax"/>[b].</summary>
    public static void Update(float* p, float* g, byte* expAvgCodes, float* expAvgAbsmax, byte* expAvgSqCodes, float* expAvgSqAbsmax,
        long count, in AdamWStepScalars s)
    {
        var constants = new AdamWCpuKernel.Constants(s);
        var signed = NearestCodeLookup.Signed;
        var unsigned = NearestCodeLookup.Unsigned;
        float* m = stackalloc float[BlockSize];
        float* v = stackalloc float[BlockSize];
        for (long start = 0, block = 0; start < count; start += BlockSize, block++)
        {
            int length = (int)Math.Min(BlockSize, count - start);
            Dequantize(expAvgCodes + start, expAvgAbsmax[block], length, signed, m);
            Dequantize(expAvgSqCodes + start, expAvgSqAbsmax[block], length, unsigned, v);
            AdamWCpuKernel.Update(p + start, g + start, m, v, length, constants);
            expAvgAbsmax[block] = Quantize(m, length, signed, expAvgCodes + start);
            expAvgSqAbsmax[block] = Quantize(v, length, unsigned, expAvgSqCodes + start);
        }
    }

    /// <summary>values[i] = map[codes[i]] · scale for one block.</summary>
    internal static void Dequantize(byte* codes, float scale, int length, NearestCodeLookup lookup, float* values)
    {
        float* map = lookup.ValuesPointer;
        int i = 0;
        if (Avx2.IsSupported)
        {
            var vScale = Vector256.Create(scale);
            for (; i <= length - 8; i += 8)
            {
                var index = Avx2.ConvertToVector256Int32(codes + i);
                Avx.Store(values + i, Avx.Multiply(Avx2.GatherVector256(map, index, 4), vScale));
            }
        }
        for (; i < length; i++) values[i] = map[codes[i]] * scale;
    }

    /// <summary>Codes one block of <paramref name="values"/> and returns its scale (the largest magnitude).</summary>
    internal static float Quantize(float* values, int length, NearestCodeLookup lookup, byte* codes)
    {
        float absmax = AbsMax(values, length);
        float divisor = absmax == 0 ? 1 : absmax;
        int i = 0;
        if (Avx2.IsSupported)
        {
            var vDivisor = Vector256.Create(divisor);
            int* start = (int*)lookup.StartPointer;
            float* boundaries = lookup.BoundariesPointer;
            int corrections = lookup.Corrections;
            for (; i <= length - 32; i += 32)
            {
                var c0 = Codes(Avx.Divide(Avx.LoadVector256(values + i), vDivisor), start, boundaries, corrections);
                var c1 = Codes(Avx.Divide(Avx.LoadVector256(values + i + 8), vDivisor), start, boundaries, corrections);
                var c2 = Codes(Avx.Divide(Avx.LoadVector256(values + i + 16), vDivisor), start, boundaries, corrections);
                var c3 = Codes(Avx.Divide(Avx.LoadVector256(values + i + 24), vDivisor), start, boundaries, corrections);
                var bytes = Vector256.Narrow(Vector256.Narrow(c0, c1), Vector256.Narrow(c2, c3));
                bytes.Store(codes + i);
            }
        }
        for (; i < length; i++) codes[i] = (byte)lookup.Code(values[i] / divisor);
        return absmax;
    }

    /// <summary>Eight codes: the cell's starting code, the correction comparisons, 255 for NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Codes(Vector256<float> x, int* start, float* boundaries, int corrections)
    {
        var bits = x.AsInt32();
        var cell = Avx2.Min(Avx2.ShiftRightLogical(Avx2.And(bits, Vector256.Create(0x7FFFFFFF)), NearestCodeLookup.Shift),
            Vector256.Create(NearestCodeLookup.CellsPerSign - 1));
        var index = Avx2.Add(cell, Avx2.And(Avx2.ShiftRightArithmetic(bits, 31), Vector256.Create(NearestCodeLookup.CellsPerSign)));
        var code = Avx2.And(Avx2.GatherVector256(start, index, 1), Vector256.Create(0xFF));
        for (int k = 0; k < corrections; k++)
        {
            var passed = Avx.Compare(Avx2.GatherVector256(boundaries, code, 4), x, FloatComparisonMode.UnorderedNotGreaterThanOrEqualNonSignaling);
            code = Avx2.Subtract(code, passed.AsInt32());
        }
        var nan = Avx.Compare(x, x, FloatComparisonMode.UnorderedNonSignaling).AsInt32();
        return Avx2.BlendVariable(code, Vector256.Create(255), nan).AsUInt32();
    }

    /// <summary>The largest |value| of a block, or NaN if it holds a NaN (<c>amax</c>'s propagation).</summary>
    internal static float AbsMax(float* values, int length)
    {
        float max = 0;
        bool nan = false;
        int i = 0;
        if (Avx2.IsSupported && length >= 8)
        {
            var magnitudeMask = Vector256.Create(0x7FFFFFFF).AsSingle();
            var vMax = Vector256<float>.Zero;
            var vNan = Vector256<float>.Zero;
            for (; i <= length - 8; i += 8)
            {
                var x = Avx.And(Avx.LoadVector256(values + i), magnitudeMask);
                vMax = Avx.Max(vMax, x);
                vNan = Avx.Or(vNan, Avx.Compare(x, x, FloatComparisonMode.UnorderedNonSignaling));
            }
            nan = Avx.MoveMask(vNan) != 0;
            for (int k = 0; k < 8; k++) max = Math.Max(max, vMax.GetElement(k));
        }
        for (; i < length; i++)
        {
            float a = Math.Abs(values[i]);
            if (float.IsNaN(a)) nan = true;
            else if (a > max) max = a;
        }
        return nan ? float.NaN : max;
    }
}
