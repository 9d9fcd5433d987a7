using AttnDreamBooth.Imaging;
using AttnDreamBooth.IO;
using SkiaSharp;

namespace AttnDreamBooth.Tests.Imaging;

/// <summary>The one image decoder: formats, colour conversions, transparency, EXIF orientation, and every refusal by kind.</summary>
public sealed class ImageDecoderTests
{
    private static readonly ImageDecodeOptions Options = ImageDecodeOptions.From(ResourceLimits.Default) with { MinimumSide = 16 };

    private static RgbImage Load(byte[] bytes, ImageDecodeOptions? options = null) =>
        ImageDecoder.Load(ImageSource.FromBytes("test image", bytes), options ?? Options);

    private static InvalidImageException Reject(byte[] bytes, ImageDecodeOptions? options = null) =>
        Assert.Throws<InvalidImageException>(() => Load(bytes, options));

    private static void AssertColor(RgbColor expected, RgbColor actual, int tolerance)
    {
        Assert.True(Math.Abs(expected.R - actual.R) <= tolerance && Math.Abs(expected.G - actual.G) <= tolerance && Math.Abs(expected.B - actual.B) <= tolerance,
            $"expected {expected}, got {actual}");
    }

    [Theory]
    [InlineData(SKEncodedImageFormat.Png, 0)]
    [InlineData(SKEncodedImageFormat.Jpeg, 40)]
    [InlineData(SKEncodedImageFormat.Webp, 40)]
    public void Decodes_supported_formats(SKEncodedImageFormat format, int tolerance)
    {
        using var bitmap = TestImages.Quadrants(48, 32);
        var image = Load(TestImages.Encode(bitmap, format));
        Assert.Equal((48, 32), (image.Width, image.Height));
        AssertColor(new RgbColor(255, 0, 0), image[6, 6], tolerance);
        AssertColor(new RgbColor(0, 255, 0), image[40, 6], tolerance);
        AssertColor(new RgbColor(0, 0, 255), image[6, 26], tolerance);
        AssertColor(RgbColor.White, image[40, 26], tolerance);
        var info = ImageDecoder.Inspect(ImageSource.FromBytes("x", TestImages.Encode(bitmap, format)), Options);
        Assert.Equal(format switch { SKEncodedImageFormat.Png => ImageFormat.Png, SKEncodedImageFormat.Jpeg => ImageFormat.Jpeg, _ => ImageFormat.WebP }, info.Format);
    }

    [Theory]
    [InlineData(SKEncodedImageFormat.Png)]
    [InlineData(SKEncodedImageFormat.Jpeg)]
    public void Grayscale_becomes_rgb(SKEncodedImageFormat format)
    {
        using var gray = TestImages.Solid(20, 20, new SKColor(90, 90, 90), SKColorType.Gray8, SKAlphaType.Opaque);
        var image = Load(TestImages.Encode(gray, format));
        var c = image[10, 10];
        Assert.Equal(c.R, c.G);
        Assert.Equal(c.G, c.B);
        Assert.InRange(c.R, 85, 95);
    }

    [Fact]
    public void Cmyk_jpeg_becomes_rgb()
    {
        // Adobe-style (inverted) CMYK: 255 means no ink. No cyan, full magenta, no yellow, no black -> magenta.
        var image = Load(CmykJpeg.Flat8x8(255, 0, 255, 255), Options with { MinimumSide = 8 });
        Assert.Equal((8, 8), (image.Width, image.Height));
        AssertColor(new RgbColor(255, 0, 255), image[4, 4], 3);
        AssertColor(new RgbColor(0, 0, 0), Load(CmykJpeg.Flat8x8(0, 0, 0, 0), Options with { MinimumSide = 8 })[0, 7], 3);
    }

    [Fact]
    public void Alpha_is_composited_onto_the_background()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(20, 20, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < 20; y++)
        for (int x = 0; x < 20; x++)
            bitmap.SetPixel(x, y, x < 10 ? new SKColor(255, 0, 0, 0) : new SKColor(255, 0, 0, 128));
        byte[] png = TestImages.Encode(bitmap, SKEncodedImageFormat.Png);

        var onWhite = Load(png);
        Assert.Equal(RgbColor.White, onWhite[2, 2]);                        // fully transparent -> background
        AssertColor(new RgbColor(255, 127, 127), onWhite[15, 2], 1);        // half red over white

        var onBlack = Load(png, Options with { AlphaBackground = RgbColor.Black });
        Assert.Equal(RgbColor.Black, onBlack[2, 2]);
        AssertColor(new RgbColor(128, 0, 0), onBlack[15, 2], 1);
    }

    [Theory]
    // Stored quadrants: R G / B W. Expected upright colours at (top-left, top-right, bottom-left, bottom-right).
    [InlineData(1, "RGBW")]
    [InlineData(2, "GRWB")]   // mirrored left-right
    [InlineData(3, "WBGR")]   // rotated 180
    [InlineData(4, "BWRG")]   // mirrored top-bottom
    [InlineData(5, "RBGW")]   // transposed
    [InlineData(6, "BRWG")]   // stored image is rotated 90 clockwise for display
    [InlineData(7, "WGBR")]   // transversed
    [InlineData(8, "GWRB")]   // rotated 90 counter-clockwise for display
    public void Exif_orientation_is_applied(int orientation, string expected)
    {
        using var bitmap = TestImages.Quadrants(64, 32);
        byte[] jpeg = TestImages.WithExifOrientation(TestImages.Encode(bitmap, SKEncodedImageFormat.Jpeg), (ushort)orientation);
        var image = Load(jpeg);
        bool swapped = orientation >= 5;
        Assert.Equal(swapped ? (32, 64) : (64, 32), (image.Width, image.Height));
        int w = image.Width, h = image.Height;
        var corners = new[] { image[w / 4, h / 4], image[3 * w / 4, h / 4], image[w / 4, 3 * h / 4], image[3 * w / 4, 3 * h / 4] };
        for (int i = 0; i < 4; i++)
        {
            var want = expected[i] switch
            {
                'R' => new RgbColor(255, 0, 0),
                'G' => new RgbColor(0, 255, 0),
                'B' => new RgbColor(0, 0, 255),
                _ => RgbColor.White,
            };
            AssertColor(want, corners[i], 40);
        }
    }

    [Fact]
    public void Corrupt_and_unsupported_files_are_rejected_by_kind()
    {
        using var bitmap = TestImages.Quadrants(64, 64);
        byte[] jpeg = TestImages.Encode(bitmap, SKEncodedImageFormat.Jpeg);
        byte[] png = TestImages.Encode(bitmap, SKEncodedImageFormat.Png);

        Assert.Equal(ImageProblemKind.Empty, Reject([]).Kind);
        Assert.Equal(ImageProblemKind.Corrupt, Reject(TruncateScan(jpeg)).Kind);                          // header intact, data cut
        Assert.Equal(ImageProblemKind.Corrupt, Reject(jpeg.Take(200).ToArray()).Kind);                    // header cut
        Assert.Equal(ImageProblemKind.Corrupt, Reject(png.Take(png.Length - 30).ToArray()).Kind);
        Assert.Equal(ImageProblemKind.Corrupt, Reject([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4, 5]).Kind);  // JPEG magic, garbage
        Assert.Equal(ImageProblemKind.Unsupported, Reject("hello, I am a text file"u8.ToArray()).Kind);
        var gif = Reject("GIF89a\x01\x00\x01\x00"u8.ToArray());
        Assert.Equal(ImageProblemKind.Unsupported, gif.Kind);
        Assert.Contains("GIF", gif.Message);
        Assert.Equal(ImageProblemKind.Unsupported, Reject("BM\0\0\0\0\0\0\0\0"u8.ToArray()).Kind);
        Assert.Equal(ImageProblemKind.ZeroSized, Reject(TestImages.WithPngSize(png, 0, 64)).Kind);
        Assert.Contains("test image", Reject([]).Message);
    }

    [Fact]
    public void Size_limits_are_checked_from_the_header_before_decoding()
    {
        using var small = TestImages.Quadrants(12, 40);
        var tooSmall = Reject(TestImages.Encode(small, SKEncodedImageFormat.Png));
        Assert.Equal(ImageProblemKind.TooSmall, tooSmall.Kind);
        Assert.Contains("12x40", tooSmall.Message);

        using var bitmap = TestImages.Quadrants(64, 64);
        byte[] png = TestImages.Encode(bitmap, SKEncodedImageFormat.Png);
        var tooMany = Reject(png, Options with { MaxPixels = 64 * 64 - 1 });
        Assert.Equal(ImageProblemKind.TooLarge, tooMany.Kind);
        Assert.Contains("ResourceLimits.MaxImagePixels", tooMany.Message);
        Load(png, Options with { MaxPixels = 64 * 64 });

        var bigFile = Reject(png, Options with { MaxFileBytes = png.Length - 1 });
        Assert.Equal(ImageProblemKind.TooLarge, bigFile.Kind);
        Assert.Contains("ResourceLimits.MaxImageFileBytes", bigFile.Message);

        // A header claiming 60000 x 60000 over a tiny body: rejected as too large, i.e. without trying to decode it.
        var bomb = Reject(TestImages.WithPngSize(png, 60000, 60000));
        Assert.Equal(ImageProblemKind.TooLarge, bomb.Kind);
        Assert.Contains("60000x60000", bomb.Message);
    }

    /// <summary>Keeps the JPEG headers and the first half of the entropy-coded scan data.</summary>
    private static byte[] TruncateScan(byte[] jpeg)
    {
        int sos = Enumerable.Range(2, jpeg.Length - 3).First(i => jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA);
        return jpeg.Take(sos + (jpeg.Length - sos) / 2).ToArray();
    }
}
