using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using SkiaSharp;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class ConceptImageLoaderTests
{
    private static readonly ConceptImageOptions Options = new() { Resolution = 32, MinimumSide = 16 };

    private static RgbImage Load(byte[] bytes, ConceptImageOptions? options = null) =>
        ConceptImageLoader.Load(ConceptImageSource.FromBytes("test image", bytes), options ?? Options);

    private static InvalidConceptImageException Reject(byte[] bytes, ConceptImageOptions? options = null) =>
        Assert.Throws<InvalidConceptImageException>(() => Load(bytes, options));

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
        var info = ConceptImageLoader.Inspect(ConceptImageSource.FromBytes("x", TestImages.Encode(bitmap, format)), Options);
        Assert.Equal(format switch { SKEncodedImageFormat.Png => ConceptImageFormat.Png, SKEncodedImageFormat.Jpeg => ConceptImageFormat.Jpeg, _ => ConceptImageFormat.WebP }, info.Format);
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

        Assert.Equal(ConceptImageProblemKind.Empty, Reject([]).Kind);
        Assert.Equal(ConceptImageProblemKind.Corrupt, Reject(TruncateScan(jpeg)).Kind);                          // header intact, data cut
        Assert.Equal(ConceptImageProblemKind.Corrupt, Reject(jpeg.Take(200).ToArray()).Kind);                    // header cut
        Assert.Equal(ConceptImageProblemKind.Corrupt, Reject(png.Take(png.Length - 30).ToArray()).Kind);
        Assert.Equal(ConceptImageProblemKind.Corrupt, Reject([0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4, 5]).Kind);  // JPEG magic, garbage
        Assert.Equal(ConceptImageProblemKind.Unsupported, Reject("hello, I am a text file"u8.ToArray()).Kind);
        var gif = Reject("GIF89a\x01\x00\x01\x00"u8.ToArray());
        Assert.Equal(ConceptImageProblemKind.Unsupported, gif.Kind);
        Assert.Contains("GIF", gif.Message);
        Assert.Equal(ConceptImageProblemKind.Unsupported, Reject("BM\0\0\0\0\0\0\0\0"u8.ToArray()).Kind);
        Assert.Equal(ConceptImageProblemKind.ZeroSized, Reject(TestImages.WithPngSize(png, 0, 64)).Kind);
        Assert.Contains("test image", Reject([]).Message);
    }

    [Fact]
    public void Size_limits_are_checked_from_the_header_before_decoding()
    {
        using var small = TestImages.Quadrants(12, 40);
        var tooSmall = Reject(TestImages.Encode(small, SKEncodedImageFormat.Png));
        Assert.Equal(ConceptImageProblemKind.TooSmall, tooSmall.Kind);
        Assert.Contains("12x40", tooSmall.Message);

        using var bitmap = TestImages.Quadrants(64, 64);
        byte[] png = TestImages.Encode(bitmap, SKEncodedImageFormat.Png);
        Assert.Equal(ConceptImageProblemKind.TooLarge, Reject(png, Options with { MaxPixels = 64 * 64 - 1 }).Kind);
        Load(png, Options with { MaxPixels = 64 * 64 });

        var bigFile = Reject(png, Options with { MaxFileBytes = png.Length - 1 });
        Assert.Equal(ConceptImageProblemKind.TooLarge, bigFile.Kind);
        Assert.Contains("MaxFileBytes", bigFile.Message);

        // A header claiming 60000 x 60000 over a tiny body: rejected as too large, i.e. without trying to decode it.
        var bomb = Reject(TestImages.WithPngSize(png, 60000, 60000));
        Assert.Equal(ConceptImageProblemKind.TooLarge, bomb.Kind);
        Assert.Contains("60000x60000", bomb.Message);
    }

    [Fact]
    public void Image_set_reports_every_bad_file_by_name_before_decoding_anything()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using var bitmap = TestImages.Quadrants(64, 64);
        File.WriteAllBytes(dir.File("good.png"), TestImages.Encode(bitmap, SKEncodedImageFormat.Png));
        byte[] jpeg = TestImages.Encode(bitmap, SKEncodedImageFormat.Jpeg);
        File.WriteAllBytes(dir.File("truncated.jpg"), TruncateScan(jpeg));
        File.WriteAllBytes(dir.File("empty.webp"), []);
        File.WriteAllBytes(dir.File("anim.gif"), "GIF89a\x01\x00\x01\x00"u8.ToArray());
        var concept = Concept.FromFolder(dir.Path, "dog");

        var ex = Assert.Throws<InvalidConceptImageException>(() => ConceptImageSet.Load(concept, Options));
        Assert.Equal(2, ex.Problems.Count); // header stage: the empty file and the GIF; the truncation is found by decoding
        Assert.Contains(ex.Problems, p => p.ImageName.EndsWith("empty.webp", StringComparison.Ordinal) && p.Kind == ConceptImageProblemKind.Empty);
        Assert.Contains(ex.Problems, p => p.ImageName.EndsWith("anim.gif", StringComparison.Ordinal) && p.Kind == ConceptImageProblemKind.Unsupported);
        Assert.Contains("anim.gif", ex.Message);

        var all = ConceptImageSet.FindProblems(concept, Options);
        Assert.Equal(3, all.Count);
        Assert.Contains(all, p => p.ImageName.EndsWith("truncated.jpg", StringComparison.Ordinal) && p.Kind == ConceptImageProblemKind.Corrupt);

        File.Delete(dir.File("empty.webp"));
        File.Delete(dir.File("anim.gif"));
        var truncatedOnly = Assert.Throws<InvalidConceptImageException>(() => ConceptImageSet.Load(Concept.FromFolder(dir.Path, "dog"), Options));
        Assert.Equal(ConceptImageProblemKind.Corrupt, truncatedOnly.Kind);
        Assert.EndsWith("truncated.jpg", truncatedOnly.ImageName, StringComparison.Ordinal);
    }

    /// <summary>Keeps the JPEG headers and the first half of the entropy-coded scan data.</summary>
    private static byte[] TruncateScan(byte[] jpeg)
    {
        int sos = Enumerable.Range(2, jpeg.Length - 3).First(i => jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA);
        return jpeg.Take(sos + (jpeg.Length - sos) / 2).ToArray();
    }

    [Fact]
    public void Missing_file_is_reported_as_unreadable()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var concept = Concept.FromFiles([dir.File("nope.png")], "dog");
        var ex = Assert.Throws<InvalidConceptImageException>(() => ConceptImageSet.Load(concept, Options));
        Assert.Equal(ConceptImageProblemKind.Unreadable, ex.Kind);
        Assert.Contains("nope.png", ex.Message);
    }

    [Fact]
    public void The_sample_dog_photos_load()
    {
        var concept = Concept.FromFolder(Path.Combine(TestPaths.RepoRoot, "samples", "data", "dog"), "dog");
        Assert.Equal(5, concept.Images.Count); // LICENSE.md and references_and_licenses.txt are not images
        var set = ConceptImageSet.Load(concept, new ConceptImageOptions { Resolution = 64 });
        Assert.All(set.Images, i => Assert.True(Math.Min(i.Width, i.Height) >= 600));
        var batch = set.GetBatch([0, 1, 2, 3, 4], new SeededRandom(3));
        Assert.Equal(new long[] { 5, 3, 64, 64 }, batch.shape);
    }
}
