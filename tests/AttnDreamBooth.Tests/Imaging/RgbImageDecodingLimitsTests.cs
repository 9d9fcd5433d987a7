using System.Buffers.Binary;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using SkiaSharp;

namespace AttnDreamBooth.Tests.Imaging;

/// <summary>The evaluation path's image decoder has the training decoder's limits: declared size checked before
/// decoding, truncated pixel data refused unless asked for.</summary>
public sealed class RgbImageDecodingLimitsTests
{
    [Fact]
    public void APngDeclaringFiftyThousandSquarePixelsIsRefusedBeforeDecoding()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("huge.png");
        File.WriteAllBytes(path, WithDeclaredSize(EncodePng(Noise(8, 8, seed: 1)), 50_000, 50_000));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var error = Assert.Throws<InvalidDataException>(() => RgbImageDecoding.Load(path));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Contains("50000x50000", error.Message);
        Assert.Contains("huge.png", error.Message);
        // Refused from the header: nothing near the 10 GB the declared pixels would take was allocated.
        Assert.True(allocated < 16L << 20, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void ATruncatedPngIsAnErrorUnlessExplicitlyAllowed()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("cut.png");
        byte[] whole = EncodePng(Noise(64, 64, seed: 2));
        File.WriteAllBytes(path, whole[..(whole.Length * 6 / 10)]);
        var error = Assert.Throws<InvalidDataException>(() => RgbImageDecoding.Load(path));
        Assert.Contains("truncated", error.Message);
        var partial = RgbImageDecoding.Load(path, ConceptImageOptions.DefaultMaxPixels, allowTruncated: true);
        Assert.Equal(64, partial.Width);
    }

    [Fact]
    public void ACompleteImageDecodesToItsPixels()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("ok.png");
        var image = Noise(16, 12, seed: 3);
        File.WriteAllBytes(path, EncodePng(image));
        var loaded = RgbImageDecoding.Load(path);
        Assert.Equal(image.Pixels, loaded.Pixels);
    }

    private static RgbImage Noise(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(width, height, pixels);
    }

    private static byte[] EncodePng(RgbImage image)
    {
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                int i = (y * image.Width + x) * 3;
                bitmap.SetPixel(x, y, new SKColor(image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2], 255));
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Rewrites the IHDR chunk's width and height (and its CRC, so the header stays valid).</summary>
    private static byte[] WithDeclaredSize(byte[] png, int width, int height)
    {
        var copy = (byte[])png.Clone();
        // Signature (8) + length (4) + "IHDR" (4): width and height follow, then the rest of IHDR and its CRC.
        BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(20), height);
        uint crc = Crc32(copy.AsSpan(12, 4 + 13));
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(29), crc);
        return copy;
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
