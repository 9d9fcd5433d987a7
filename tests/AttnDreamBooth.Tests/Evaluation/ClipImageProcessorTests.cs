using AttnDreamBooth.Evaluation;
using AttnDreamBooth.IO;
using AttnDreamBooth.Imaging;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Evaluation;

public sealed class ClipImageProcessorTests
{
    public static TheoryData<string> ClipCases()
    {
        var data = new TheoryData<string>();
        foreach (var c in FixtureRoots.Cases.Values.Where(c => c.Kind == "clip_eval")) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public void GeometryMatchesTheManifest(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        var processor = ClipImageProcessor.FromFolder(ClipFixture.ModelFolder(fixture));
        var images = fixture.Manifest.Fact("preprocess").GetProperty("images").EnumerateArray().ToArray();
        Assert.Equal(ClipFixture.ImageNames(fixture).Count, images.Length);
        foreach (var image in images)
        {
            var input = ClipFixture.LongArray(image.GetProperty("input_hw"));
            var resized = ClipFixture.LongArray(image.GetProperty("resized_hw"));
            var crop = ClipFixture.LongArray(image.GetProperty("crop_top_left"));
            var (h, w) = processor.ResizedSize((int)input[0], (int)input[1]);
            Assert.Equal((resized[0], resized[1]), ((long)h, (long)w));
            var (top, left) = processor.CropOffsets(h, w);
            Assert.Equal((crop[0], crop[1]), ((long)top, (long)left));
        }
    }

    [Fact]
    public void ConstantImagesStayConstantThroughBothPasses()
    {
        var pixels = Enumerable.Repeat((byte)77, 37 * 53 * 3).ToArray();
        foreach (var (h, w) in new[] { (224, 320), (11, 7), (37, 300) })
        {
            var resized = PillowBicubic.Resize(pixels, 37, 53, h, w);
            Assert.All(resized, b => Assert.Equal(77, b));
        }
    }

    [Fact]
    public void OvershootIsClippedToTheByteRange()
    {
        // A hard edge makes the bicubic kernel overshoot on both sides; Pillow clips after each pass.
        var pixels = new byte[4 * 8 * 3];
        for (int y = 0; y < 4; y++) for (int x = 4; x < 8; x++) for (int c = 0; c < 3; c++) pixels[(y * 8 + x) * 3 + c] = 255;
        var resized = PillowBicubic.Resize(pixels, 4, 8, 4, 32);
        Assert.Contains(resized, b => b == 0);
        Assert.Contains(resized, b => b == 255);
    }

    [Fact]
    public void SmallImagesArePaddedWhenResizingIsOff()
    {
        var processor = new ClipImageProcessor(new ClipImageProcessorConfig { DoResize = false, DoNormalize = false, DoRescale = false, CropHeight = 4, CropWidth = 4 });
        var image = new RgbImage(3, 2, Enumerable.Repeat((byte)200, 2 * 3 * 3).ToArray());
        using var pixels = processor.Preprocess([image]);
        Assert.Equal([1L, 3, 4, 4], pixels.shape);
        Assert.Equal(200f * 6 * 3, pixels.sum().item<float>());
        Assert.Equal(0f, pixels[0, 0, 0, 0].item<float>());
        Assert.Equal(200f, pixels[0, 0, 1, 1].item<float>());
    }

    [Fact]
    public void UnsupportedResamplersAreRejected()
    {
        var ex = Assert.Throws<ModelConfigException>(() => ClipImageProcessorConfig.FromReader(ConfigReader.Parse("{\"resample\": 2}")));
        Assert.Equal("resample", ex.Key);
        Assert.Throws<ArgumentException>(() => new RgbImage(2, 1, new byte[5]));
        Assert.Throws<ArgumentException>(() => RgbImageDecoding.FromHwcTensor(TorchSharp.torch.full(2, 2, 3, Kept(1.5f))));
    }

    [Fact]
    public void BitmapsConvertToRgbWithoutCompositingWhileFilesDecodeAsTrainingPhotos()
    {
        using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(2, 1, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Unpremul));
        // Written as raw bytes: SetPixel would premultiply the transparent pixel to black.
        System.Runtime.InteropServices.Marshal.Copy(new byte[] { 10, 20, 30, 255, 200, 100, 50, 0 }, 0, bitmap.GetPixels(), 8);
        var image = RgbImageDecoding.FromBitmap(bitmap);
        Assert.Equal(new byte[] { 10, 20, 30, 200, 100, 50 }, image.Pixels);

        // Through a PNG file: decoded as training decodes photos, so the transparent pixel is composited onto white.
        using var temp = TestPaths.CreateTempDirectory();
        string png = temp.File("a.png");
        using (var data = SkiaSharp.SKImage.FromBitmap(bitmap).Encode(SkiaSharp.SKEncodedImageFormat.Png, 100))
        using (var stream = File.OpenWrite(png)) data.SaveTo(stream);
        Assert.Equal(new byte[] { 10, 20, 30, 255, 255, 255 }, RgbImage.Load(png).Pixels);
        Assert.Equal(ImageProblemKind.Unreadable, Assert.Throws<InvalidImageException>(() => RgbImage.Load(temp.File("missing.png"))).Kind);
    }
}
