using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The quality grid: the images and verdicts of the measurement itself, laid out one prompt per row.</summary>
public sealed class ShapesQualityGridTests
{
    private static string ShippedModel => Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd");

    [Fact]
    public async Task TheGridShowsTheMeasuredImagesWithTheReportsVerdicts()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(ShippedModel).Build();
        var grid = new ShapesQualityGrid(prompts: 2);
        var every = new List<QualityImage>();
        var report = await ShapesModelQuality.MeasureAsync(pipeline, ShapesWorld.Default, prompts: 3, seeds: 2, new GenerationOptions { Steps = 4 },
            onImage: image => { every.Add(image); grid.Add(image); });

        // One callback per sample, carrying the report's own sample objects; the grid keeps only its two prompts.
        Assert.Equal(report.Samples.Count, every.Count);
        Assert.All(every.Zip(report.Samples), p => Assert.Same(p.Second, p.First.Sample));
        Assert.Equal([0, 0, 1, 1], grid.Images.Select(i => i.PromptIndex));
        Assert.Equal(report.Samples.Take(4), grid.Images.Select(i => i.Sample));

        // The labels say right exactly where the table counts right, attribute by attribute.
        foreach (var image in grid.Images)
        {
            var s = image.Sample;
            bool[] expected = [s.MeasuredShape == s.Shape, s.MeasuredColor == s.Color, s.MeasuredBackground == s.Background,
                s.MeasuredPosition == s.Position, s.MeasuredSize == s.Size];
            var labels = ShapesQualityGrid.Labels(s);
            Assert.Equal(expected, labels.Select(l => l.Right));
            Assert.Equal($"shape {s.Shape}" + (expected[0] ? "" : $" → {s.MeasuredShape ?? "none"}"), labels[0].Text);
        }
        foreach (var (name, accuracy) in ShapesModelQuality.AttributeNames.Zip(report.Attributes))
        {
            Assert.Equal(name, accuracy.Attribute);
            Assert.Equal(report.Samples.Count(s => ShapesQualityGrid.Labels(s)[ShapesModelQuality.AttributeNames.ToList().IndexOf(name)].Right), accuracy.Correct);
        }

        var picture = grid.Render();
        int size = every[0].Image.Width;
        var layout = QualityGridLayout.For(rows: 2, columns: 2, size, size);
        Assert.Equal(3 * 64, layout.Tile); // 64-pixel images, scaled up to at least MinTile
        Assert.Equal((layout.Width, layout.Height), (picture.Width, picture.Height));
        Assert.Equal(QualityGridLayout.For(rows: 3, columns: 2, size, size).Height - layout.Height, layout.RowHeight);
        // Two 192-pixel cells are narrower than the prompt lines' minimum; from three seeds on each adds a cell and a gap.
        Assert.Equal(2 * QualityGridLayout.Margin + QualityGridLayout.MinContentWidth, layout.Width);
        Assert.Equal(QualityGridLayout.For(rows: 2, columns: 4, size, size).Width - QualityGridLayout.For(rows: 2, columns: 3, size, size).Width,
            layout.Tile + QualityGridLayout.Gap);

        foreach (var image in grid.Images)
        {
            int row = image.PromptIndex, column = (int)image.Sample.Seed;
            var cell = Crop(picture, layout.CellX(column), layout.CellY(row), layout.Tile, layout.TileHeight);
            Assert.True(cell.Pixels.Chunk(3).Select(p => (p[0], p[1], p[2])).Distinct().Count() > 20, $"cell {row},{column} is blank");
            Assert.Equal(ShapesImageGrid.Compose([image.Image], columns: 1, scale: layout.Scale).Pixels, cell.Pixels);
            // The five label lines under the image are drawn in green (right) or red (wrong).
            var band = Crop(picture, layout.CellX(column), layout.CellY(row) + layout.TileHeight + 4, layout.Tile,
                ShapesModelQuality.AttributeNames.Count * QualityGridLayout.LineHeight);
            var pixels = band.Pixels.Chunk(3).ToList();
            bool anyWrong = ShapesQualityGrid.Labels(image.Sample).Any(l => !l.Right), anyRight = ShapesQualityGrid.Labels(image.Sample).Any(l => l.Right);
            Assert.Equal(anyWrong, pixels.Any(p => p[0] > 150 && p[1] < 90 && p[2] < 90));
            Assert.Equal(anyRight, pixels.Any(p => p[1] > 100 && p[0] < 80 && p[2] < 110));
        }
    }

    [Fact]
    public void KeepsOnlyItsPromptsAndRejectsBadArguments()
    {
        var grid = new ShapesQualityGrid(prompts: 2);
        Assert.Throws<InvalidOperationException>(() => grid.Render());
        var sample = new QualitySample("p", 0, "snow", "star", "red", "small", "left", "snow", "star", "blue", "small", null);
        for (int i = 0; i < 5; i++) grid.Add(new QualityImage(i, sample with { Seed = i }, Solid(8, (byte)(40 * i))));
        Assert.Equal([0, 1], grid.Images.Select(i => i.PromptIndex));
        Assert.Equal("position left → none", ShapesQualityGrid.Labels(sample)[3].Text);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesQualityGrid(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesQualityGrid(ShapesQualityGrid.MaxPrompts + 1));
        Assert.Throws<ArgumentNullException>(() => grid.Add(null!));
        grid.Add(new QualityImage(1, sample with { Seed = 9 }, Solid(16, 0)));
        Assert.Throws<InvalidOperationException>(() => grid.Render());
    }

    [Fact]
    public void SaveWritesThePngAtomically()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var grid = new ShapesQualityGrid(prompts: 1);
        var sample = new QualitySample("a photo of a red star", 0, "snow", "star", "red", "small", "left", "snow", "star", "red", "small", "left");
        grid.Add(new QualityImage(0, sample, Solid(64, 90)));
        string path = Path.Combine(temp.Path, "sub", "grid.png");
        grid.Save(path);
        var loaded = RgbImage.Load(path);
        var layout = QualityGridLayout.For(1, 1, 64, 64);
        Assert.Equal((layout.Width, layout.Height), (loaded.Width, loaded.Height));
        Assert.Equal(grid.Render().Pixels, loaded.Pixels);
        Assert.Equal(["grid.png"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    private static RgbImage Solid(int size, byte value) => new(size, size, Enumerable.Repeat(value, size * size * 3).ToArray());

    private static RgbImage Crop(RgbImage image, int x, int y, int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (int row = 0; row < height; row++)
            Array.Copy(image.Pixels, ((y + row) * image.Width + x) * 3, pixels, row * width * 3, width * 3);
        return new RgbImage(width, height, pixels);
    }
}
