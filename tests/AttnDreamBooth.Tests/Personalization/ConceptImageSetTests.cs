using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using SkiaSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>A concept's photos: every header checked before anything is decoded, every refusal reported at once.</summary>
public sealed class ConceptImageSetTests
{
    private static readonly ConceptImageOptions Options = new() { Resolution = 32, MinimumSide = 16 };

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

        var ex = Assert.Throws<InvalidImageException>(() => ConceptImageSet.Load(concept, Options));
        Assert.Equal(2, ex.Problems.Count); // header stage: the empty file and the GIF; the truncation is found by decoding
        Assert.Contains(ex.Problems, p => p.ImageName.EndsWith("empty.webp", StringComparison.Ordinal) && p.Kind == ImageProblemKind.Empty);
        Assert.Contains(ex.Problems, p => p.ImageName.EndsWith("anim.gif", StringComparison.Ordinal) && p.Kind == ImageProblemKind.Unsupported);
        Assert.Contains("anim.gif", ex.Message);

        var all = ConceptImageSet.FindProblems(concept, Options, AttnDreamBooth.IO.ResourceLimits.Default);
        Assert.Equal(3, all.Count);
        Assert.Contains(all, p => p.ImageName.EndsWith("truncated.jpg", StringComparison.Ordinal) && p.Kind == ImageProblemKind.Corrupt);

        File.Delete(dir.File("empty.webp"));
        File.Delete(dir.File("anim.gif"));
        var truncatedOnly = Assert.Throws<InvalidImageException>(() => ConceptImageSet.Load(Concept.FromFolder(dir.Path, "dog"), Options));
        Assert.Equal(ImageProblemKind.Corrupt, truncatedOnly.Kind);
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
        var ex = Assert.Throws<InvalidImageException>(() => ConceptImageSet.Load(concept, Options));
        Assert.Equal(ImageProblemKind.Unreadable, ex.Kind);
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
