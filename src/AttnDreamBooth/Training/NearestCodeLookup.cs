using System.Runtime.InteropServices;

namespace AttnDreamBooth.Training;

/// <summary>
/// Nearest-code search on a sorted 256-entry <see cref="DynamicQuantizationMap"/> without a binary search, giving exactly
/// the code of <c>torch.bucketize(x, boundaries)</c> (right = false): the number of decision boundaries b with
/// <c>!(b ≥ x)</c>, so a value on a boundary takes the lower code and NaN the last one.
/// </summary>
/// <remarks>
/// A float's magnitude bits, shifted right by <see cref="Shift"/>, name a cell (its exponent and top 8 mantissa bits);
/// each sign has its own cells. A cell's entry is the code of its smallest member, and since codes never decrease
/// with x, the code of any member is that entry plus the number of boundaries it still passes: at most
/// <see cref="Corrections"/> comparisons against the next boundaries (one for the dynamic maps, whose neighbouring
/// boundaries are never closer than a cell is wide). Magnitudes above 1 share one last cell per sign, which only
/// infinities and NaN reach after division by the block maximum. The tables are plain pinned arrays shared by all
/// optimizers (no tensors).
/// </remarks>
internal sealed class NearestCodeLookup
{
    /// <summary>Magnitude bits dropped to form a cell: 8 mantissa bits stay.</summary>
    internal const int Shift = 15;

    /// <summary>Cells per sign: every magnitude up to 1.0 has its own cell; one more holds everything above.</summary>
    internal const int CellsPerSign = (0x3F800000 >> Shift) + 2;

    private readonly byte[] _start;
    private readonly float[] _boundaries;
    private readonly float[] _values;
    private readonly nint _startAddress, _boundariesAddress, _valuesAddress;

    private NearestCodeLookup(IReadOnlyList<float> map)
    {
        var bounds = DynamicQuantizationMap.Boundaries(map);
        // The boundary after the last one is +∞, so a correction step never moves a non-NaN value past code 255.
        _boundaries = GC.AllocateArray<float>(256, pinned: true);
        bounds.CopyTo(_boundaries, 0);
        _boundaries[255] = float.PositiveInfinity;
        _values = GC.AllocateArray<float>(256, pinned: true);
        for (int i = 0; i < 256; i++) _values[i] = map[i];
        // 3 bytes of padding: the vector path gathers 32-bit words at byte offsets and keeps the low byte.
        _start = GC.AllocateArray<byte>(2 * CellsPerSign + 3, pinned: true);
        int corrections = 0;
        for (int sign = 0; sign < 2; sign++)
        {
            for (int cell = 0; cell < CellsPerSign; cell++)
            {
                var (lowest, highest) = Members(sign, cell);
                int first = Reference(bounds, lowest), last = Reference(bounds, highest);
                _start[sign * CellsPerSign + cell] = (byte)first;
                corrections = Math.Max(corrections, last - first);
            }
        }
        Corrections = corrections;
        _startAddress = Marshal.UnsafeAddrOfPinnedArrayElement(_start, 0);
        _boundariesAddress = Marshal.UnsafeAddrOfPinnedArrayElement(_boundaries, 0);
        _valuesAddress = Marshal.UnsafeAddrOfPinnedArrayElement(_values, 0);
    }

    /// <summary>The lookup for the signed map (first moment).</summary>
    public static NearestCodeLookup Signed { get; } = new(DynamicQuantizationMap.Signed);

    /// <summary>The lookup for the unsigned map (second moment).</summary>
    public static NearestCodeLookup Unsigned { get; } = new(DynamicQuantizationMap.Unsigned);

    /// <summary>The lookup for a moment's map.</summary>
    public static NearestCodeLookup For(bool signed) => signed ? Signed : Unsigned;

    /// <summary>Comparisons after the table look-up that make every cell exact (measured when the table is built).</summary>
    public int Corrections { get; }

    /// <summary>Per sign and cell, the code of the cell's smallest value (pinned; <see cref="CellsPerSign"/> entries per
    /// sign, positive first, then 3 bytes of padding).</summary>
    internal ReadOnlySpan<byte> Start => _start;

    /// <summary>The 255 decision boundaries followed by +∞ (pinned).</summary>
    internal ReadOnlySpan<float> Boundaries => _boundaries;

    /// <summary>The 256 map values (pinned).</summary>
    internal ReadOnlySpan<float> Values => _values;

    /// <summary>Address of <see cref="Start"/> (the array is pinned for the process's lifetime).</summary>
    internal unsafe byte* StartPointer => (byte*)_startAddress;

    /// <summary>Address of <see cref="Boundaries"/>.</summary>
    internal unsafe float* BoundariesPointer => (float*)_boundariesAddress;

    /// <summary>Address of <see cref="Values"/>.</summary>
    internal unsafe float* ValuesPointer => (float*)_valuesAddress;

    /// <summary>The table index of <paramref name="x"/>'s cell.</summary>
    internal static int CellOf(float x)
    {
        int bits = BitConverter.SingleToInt32Bits(x);
        int cell = Math.Min((bits & 0x7FFFFFFF) >> Shift, CellsPerSign - 1);
        return bits < 0 ? CellsPerSign + cell : cell;
    }

    /// <summary>The code of <paramref name="x"/> (scalar form of what the vector kernel computes).</summary>
    public int Code(float x)
    {
        if (float.IsNaN(x)) return 255;
        int code = _start[CellOf(x)];
        for (int k = 0; k < Corrections; k++)
        {
            if (!(_boundaries[code] >= x)) code++;
        }
        return code;
    }

    /// <summary>bucketize's rule spelled out: the number of boundaries b with !(b ≥ x).</summary>
    internal static int Reference(ReadOnlySpan<float> boundaries, float x)
    {
        int count = 0;
        foreach (float b in boundaries)
        {
            if (!(b >= x)) count++;
        }
        return count;
    }

    /// <summary>The smallest and the largest float of a cell (for the negative sign the most negative member first).</summary>
    private static (float Lowest, float Highest) Members(int sign, int cell)
    {
        int low = cell << Shift;
        int high = cell == CellsPerSign - 1 ? 0x7F800000 : low + (1 << Shift) - 1; // the last cell ends at +∞
        float small = BitConverter.Int32BitsToSingle(low), large = BitConverter.Int32BitsToSingle(high);
        return sign == 0 ? (small, large) : (-large, -small);
    }
}
