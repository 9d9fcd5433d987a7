using AttnDreamBooth.Imaging;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using SkiaSharp;

namespace AttnDreamBooth.Tests.Imaging;

/// <summary>Training photos (the concept's image set) and evaluation images (<see cref="RgbImage.Load(string)"/>) go
/// through one decoder: the same file gives the same pixels on both paths, and both refuse the same files the same way,
/// before decoding.</summary>
public sealed class SharedImageDecoderTests
{
    private static readonly ConceptImageOptions Training = new() { Resolution = 64 };

    /// <summary>The image the training path decodes from <paramref name="path"/>.</summary>
    private static RgbImage ViaTraining(string path, ResourceLimits? limits = null) =>
        ConceptImageSet.Load(Concept.FromFiles([path], "dog"), Training, limits ?? ResourceLimits.Default).Images[0];

    [Theory]
    [InlineData(6)] // stored rotated 90° clockwise for display: width and height swap
    [InlineData(3)] // rotated 180°
    public void AnExifRotatedJpegDecodesToTheSamePixelsOnBothPaths(int orientation)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("rotated.jpg");
        using (var bitmap = TestImages.Quadrants(96, 64))
            File.WriteAllBytes(path, TestImages.WithExifOrientation(TestImages.Encode(bitmap, SKEncodedImageFormat.Jpeg), (ushort)orientation));

        var training = ViaTraining(path);
        var evaluation = RgbImage.Load(path);

        Assert.Equal((training.Width, training.Height), (evaluation.Width, evaluation.Height));
        Assert.Equal(training.Pixels, evaluation.Pixels);
        // Upright on both: the orientation was applied, not only agreed on (stored top-left is red).
        Assert.Equal(orientation == 6 ? (64, 96) : (96, 64), (evaluation.Width, evaluation.Height));
        var topLeft = evaluation[evaluation.Width / 4, evaluation.Height / 4];
        Assert.True(orientation == 6 ? topLeft.B > 200 && topLeft.R < 60 : topLeft.R > 200 && topLeft.G > 200 && topLeft.B > 200, $"top-left is {topLeft}");
    }

    [Fact]
    public void APngWithAlphaDecodesToTheSamePixelsOnBothPaths()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("cutout.png");
        using (var bitmap = new SKBitmap(new SKImageInfo(80, 64, SKColorType.Rgba8888, SKAlphaType.Unpremul)))
        {
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 80; x++)
                    bitmap.SetPixel(x, y, new SKColor((byte)(3 * x), (byte)(4 * y), 40, (byte)(x * 255 / 79)));
            File.WriteAllBytes(path, TestImages.Encode(bitmap, SKEncodedImageFormat.Png));
        }

        var training = ViaTraining(path);
        var evaluation = RgbImage.Load(path);

        Assert.Equal(training.Pixels, evaluation.Pixels);
        // Composited onto white on both paths: a fully transparent pixel is white, not the black it stores.
        Assert.Equal(RgbColor.White, evaluation[0, 10]);
        Assert.Equal(new RgbColor(237, 40, 40), evaluation[79, 10]);
    }

    [Fact]
    public void BothPathsRefuseAnOversizedDeclaredSizeBeforeDecodingWithTheSameException()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("huge.png");
        using (var bitmap = TestImages.Quadrants(8, 8))
            File.WriteAllBytes(path, TestImages.WithPngSize(TestImages.Encode(bitmap, SKEncodedImageFormat.Png), 50_000, 50_000));

        long before = GC.GetTotalAllocatedBytes(precise: true);
        var evaluation = Assert.Throws<InvalidImageException>(() => RgbImage.Load(path));
        var training = Assert.Throws<InvalidImageException>(() => ViaTraining(path));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        foreach (var error in new[] { evaluation, training })
        {
            Assert.Equal(ImageProblemKind.TooLarge, error.Kind);
            Assert.EndsWith("huge.png", error.ImageName, StringComparison.Ordinal);
            Assert.Contains("50000x50000", error.Message);
            Assert.Contains("ResourceLimits.MaxImagePixels", error.Message);
        }
        Assert.Equal(evaluation.Problems.Single().Detail, training.Problems.Single().Detail);
        // Refused from the header: nothing near the 10 GB the declared pixels would take was allocated.
        Assert.True(allocated < 16L << 20, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void ATruncatedPngIsAnErrorOnBothPathsUnlessTheDecoderIsToldToAllowIt()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("cut.png");
        byte[] whole = EncodeOpaque(Noise(64, 64, seed: 2));
        File.WriteAllBytes(path, whole[..(whole.Length * 6 / 10)]);

        var evaluation = Assert.Throws<InvalidImageException>(() => RgbImage.Load(path));
        var training = Assert.Throws<InvalidImageException>(() => ViaTraining(path));
        Assert.All(new[] { evaluation, training }, e => Assert.Equal(ImageProblemKind.Corrupt, e.Kind));
        Assert.Contains("truncated", evaluation.Message);
        var partial = ImageDecoder.Load(path, ImageDecodeOptions.From(ResourceLimits.Default) with { AllowTruncated = true });
        Assert.Equal((64, 64), (partial.Width, partial.Height));
    }

    [Fact]
    public void AnOpaqueImageDecodesToExactlyItsPixels()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("ok.png");
        var image = Noise(16, 12, seed: 3);
        File.WriteAllBytes(path, EncodeOpaque(image));
        Assert.Equal(image.Pixels, RgbImage.Load(path).Pixels);
    }

    [Fact]
    public async Task AFifoIsRefusedByTypeWithoutBlocking()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("photo.png");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", path)) await mkfifo.WaitForExitAsync();
        var error = await Task.Run(() => Assert.Throws<InvalidImageException>(() => RgbImage.Load(path))).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(ImageProblemKind.Unreadable, error.Kind);
        Assert.Contains("FIFO", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    private static RgbImage Noise(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(width, height, pixels);
    }

    private static byte[] EncodeOpaque(RgbImage image)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                var c = image[x, y];
                bitmap.SetPixel(x, y, new SKColor(c.R, c.G, c.B, 255));
            }
        return TestImages.Encode(bitmap, SKEncodedImageFormat.Png);
    }
}
