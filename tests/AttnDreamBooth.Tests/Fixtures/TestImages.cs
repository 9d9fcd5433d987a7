using SkiaSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Generates test images with SkiaSharp (and hand-made byte patches for EXIF and broken files).</summary>
internal static class TestImages
{
    /// <summary>An image whose four quadrants are red (top-left), green (top-right), blue (bottom-left), white (bottom-right).</summary>
    public static SKBitmap Quadrants(int width, int height)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            bool right = x >= width / 2, bottom = y >= height / 2;
            bitmap.SetPixel(x, y, (right, bottom) switch
            {
                (false, false) => SKColors.Red,
                (true, false) => new SKColor(0, 255, 0),
                (false, true) => SKColors.Blue,
                _ => SKColors.White,
            });
        }
        return bitmap;
    }

    public static SKBitmap Solid(int width, int height, SKColor color, SKColorType type = SKColorType.Rgba8888, SKAlphaType alpha = SKAlphaType.Premul)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, type, alpha));
        bitmap.Erase(color);
        return bitmap;
    }

    public static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality = 95)
    {
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"SkiaSharp cannot encode {format}.");
        return data.ToArray();
    }

    /// <summary>Inserts an EXIF APP1 segment holding only the orientation tag right after the JPEG SOI marker.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        if (jpeg[0] != 0xFF || jpeg[1] != 0xD8) throw new ArgumentException("Not a JPEG.");
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, // big-endian TIFF header, IFD0 at offset 8
            0x00, 0x01,                                               // one entry
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,           // tag 0x0112 Orientation, SHORT, count 1
            (byte)(orientation >> 8), (byte)orientation, 0x00, 0x00,  // value (left-justified)
            0x00, 0x00, 0x00, 0x00,                                   // no next IFD
        ];
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        int length = payload.Length + 2;
        var segment = new byte[] { 0xFF, 0xE1, (byte)(length >> 8), (byte)length }.Concat(payload);
        return jpeg.Take(2).Concat(segment).Concat(jpeg.Skip(2)).ToArray();
    }

    /// <summary>Rewrites a PNG's IHDR width/height (with a correct CRC) without touching the pixel data.</summary>
    public static byte[] WithPngSize(byte[] png, int width, int height)
    {
        var copy = (byte[])png.Clone();
        WriteBigEndian(copy, 16, (uint)width);
        WriteBigEndian(copy, 20, (uint)height);
        uint crc = Crc32(copy.AsSpan(12, 17)); // chunk type + 13 data bytes
        WriteBigEndian(copy, 29, crc);
        return copy;
    }

    private static void WriteBigEndian(byte[] b, int offset, uint value)
    {
        b[offset] = (byte)(value >> 24);
        b[offset + 1] = (byte)(value >> 16);
        b[offset + 2] = (byte)(value >> 8);
        b[offset + 3] = (byte)value;
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
