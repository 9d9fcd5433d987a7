namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>
/// Writes a minimal baseline CMYK JPEG (8x8, one flat colour, Adobe APP14 marker) by hand, because SkiaSharp can
/// only encode RGB/gray JPEGs. Quantization table of ones, DC-only blocks; the DC Huffman table is the standard
/// luminance one and the AC table holds just the end-of-block symbol.
/// </summary>
internal static class CmykJpeg
{
    public static byte[] Flat8x8(byte c, byte m, byte y, byte k)
    {
        var o = new List<byte> { 0xFF, 0xD8 };
        // APP14 "Adobe", version 100, flags 0, transform 0 (no colour transform: plain CMYK).
        Segment(o, 0xEE, [.. "Adobe"u8, 0x00, 0x64, 0, 0, 0, 0, 0x00]);
        Segment(o, 0xDB, [0x00, .. Enumerable.Repeat((byte)1, 64)]);
        Segment(o, 0xC0, [8, 0, 8, 0, 8, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]);
        byte[] dcCounts = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        byte[] acCounts = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Segment(o, 0xC4, [0x00, .. dcCounts, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x10, .. acCounts, 0x00]);
        Segment(o, 0xDA, [4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0]);

        var bits = new BitWriter();
        foreach (byte v in new[] { c, m, y, k })
        {
            int dc = 8 * (v - 128); // the DCT of a flat block is 8 x the level-shifted value
            int size = dc == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(dc));
            var (code, length) = DcCode(size);
            bits.Write(code, length);
            if (size > 0) bits.Write(dc > 0 ? dc : dc + (1 << size) - 1, size);
            bits.Write(0, 1); // EOB: the only AC code, "0"
        }
        o.AddRange(bits.Finish());
        o.AddRange([0xFF, 0xD9]);
        return o.ToArray();
    }

    // Standard luminance DC codes (ITU T.81 table K.3).
    private static (int Code, int Length) DcCode(int size) => size switch
    {
        0 => (0b00, 2), 1 => (0b010, 3), 2 => (0b011, 3), 3 => (0b100, 3), 4 => (0b101, 3), 5 => (0b110, 3),
        6 => (0b1110, 4), 7 => (0b11110, 5), 8 => (0b111110, 6), 9 => (0b1111110, 7), 10 => (0b11111110, 8),
        _ => (0b111111110, 9),
    };

    private static void Segment(List<byte> o, byte marker, byte[] payload)
    {
        int length = payload.Length + 2;
        o.AddRange([0xFF, marker, (byte)(length >> 8), (byte)length]);
        o.AddRange(payload);
    }

    private sealed class BitWriter
    {
        private readonly List<byte> _bytes = [];
        private int _current, _count;

        public void Write(int value, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _current = (_current << 1) | ((value >> i) & 1);
                if (++_count == 8) Flush();
            }
        }

        public byte[] Finish()
        {
            while (_count != 0) Write(1, 1); // pad with ones
            return _bytes.ToArray();
        }

        private void Flush()
        {
            _bytes.Add((byte)_current);
            if (_current == 0xFF) _bytes.Add(0x00); // byte stuffing
            _current = 0;
            _count = 0;
        }
    }
}
