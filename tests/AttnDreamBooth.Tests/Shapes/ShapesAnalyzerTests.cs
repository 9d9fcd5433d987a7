using AttnDreamBooth.Imaging;
using AttnDreamBooth.Shapes;

namespace AttnDreamBooth.Tests.Shapes;

public class ShapesAnalyzerTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;

    // The analyzer was developed on seeds 1 and 42; this seed was not used to build it.
    [Fact]
    public void AtLeast98PercentPerAttributeOn300FreshRenders()
    {
        var report = AnalyzerAccuracy.Measure(World, seed: 31337, count: 300);
        Assert.True(report["objects"].Total == 300 && report["shape"].Total >= 330, $"{report["shape"].Total} objects");
        foreach (var a in report.Attributes)
            Assert.True(a.Accuracy >= 0.98, $"{a.Attribute}: {a.Correct}/{a.Total}; first mistakes: {string.Join("; ", report.Mistakes.Where(m => m.Attribute == a.Attribute).Take(3))}");
    }

    [Fact]
    public void HeldOutCombinationsAreMeasuredAsWell()
    {
        var report = AnalyzerAccuracy.Measure(World, seed: 555, count: 120, heldOut: HeldOutPolicy.Only);
        foreach (var a in report.Attributes) Assert.True(a.Accuracy >= 0.98, $"{a.Attribute}: {a.Correct}/{a.Total}");
    }

    [Fact]
    public void ReadsAKnownSceneExactly()
    {
        var w = World;
        var star = new SceneObject(w.Shape("star"), w.Color("red"), w.Pattern("striped"), w.Size("small"), w.Position("left"), 0.28, 0.5, 0.31);
        var ring = new SceneObject(w.Shape("ring"), w.Color("blue"), w.Pattern("dotted"), w.Size("small"), w.Position("right"), 0.72, 0.5, 0.3);
        var r = ShapesRenderer.Render(new Scene(w.Background("snow"), 3, [star, ring]));
        var a = new ShapesAnalyzer(w).Analyze(r.Image);
        Assert.Equal("snow", a.Background.Name);
        Assert.Equal(2, a.Objects.Count);
        var left = a.Objects.MinBy(o => o.CentroidX)!;
        var right = a.Objects.MaxBy(o => o.CentroidX)!;
        Assert.Equal(("star", "red", "striped", "small", "left"), (left.Shape.Name, left.Color.Name, left.Pattern.Name, left.Size.Name, left.Position.Name));
        Assert.Equal(("ring", "blue", "dotted", "small", "right"), (right.Shape.Name, right.Color.Name, right.Pattern.Name, right.Size.Name, right.Position.Name));
        Assert.True(left.ShapeIoU > 0.7, $"star IoU {left.ShapeIoU}");
        Assert.True(right.Mask.IoU(r.Masks[1]) > 0.9);
        // The ring's hole is background, not object.
        Assert.False(right.Mask.Contains((int)(0.72 * 64), 32));
    }

    [Fact]
    public void AnEmptyBackgroundHasNoObjectsAndNoiseIsNotAnObject()
    {
        var empty = ShapesRenderer.Render(new Scene(World.Background("night"), 11, [])).Image;
        var a = new ShapesAnalyzer(World).Analyze(empty);
        Assert.Equal("night", a.Background.Name);
        Assert.Empty(a.Objects);

        var px = (byte[])empty.Pixels.Clone();
        px[(10 * 64 + 10) * 3] = 255; // one stray red pixel
        Assert.Empty(new ShapesAnalyzer(World).Analyze(new RgbImage(64, 64, px)).Objects);
    }

    [Fact]
    public void TinyImagesAreRejected() =>
        Assert.Throws<ArgumentException>(() => new ShapesAnalyzer(World).Analyze(new RgbImage(8, 8, new byte[8 * 8 * 3])));
}

public class ShapesAnalyzerRobustnessTests
{
    // Mild blur and noise (a stand-in for generated images): the attributes the quality table uses stay ≥ 95 %.
    [Fact]
    public void BackgroundShapeColorSizeAndPositionSurviveMildBlurAndNoise()
    {
        var report = AnalyzerAccuracy.Measure(ShapesWorld.Default, seed: 99, count: 150, degradation: new ImageDegradation(0.6, 4));
        foreach (string a in new[] { "background", "objects", "shape", "color", "pattern", "size", "position", "mask" })
            Assert.True(report[a].Accuracy >= 0.95, $"{a}: {report[a].Correct}/{report[a].Total}");
    }

    // Strong blur rounds corners and cuts tips, so the silhouette's bounds are not the shape's. Normalising the mask by
    // its bounds read 219 of these 244 shapes right (89.8 %; 89.5 % of the documented seed's 1,257); fitting each
    // template at the object's coverage mass and centroid, blurred like the image, reads all of them.
    [Fact]
    public void ShapesOfStronglyBlurredRendersAreReadByTheirFittedTemplates()
    {
        var report = AnalyzerAccuracy.Measure(ShapesWorld.Default, seed: 7, count: 200, degradation: new ImageDegradation(1.0, 8));
        Assert.True(report["shape"].Accuracy >= 0.97, $"shape: {report["shape"].Correct}/{report["shape"].Total}; first mistakes: {string.Join("; ", report.Mistakes.Where(m => m.Attribute == "shape").Take(3))}");
    }

    // Blur fills concave corners and a ring's hole edge with pixels of partial coverage that are not on the component's
    // rim, so one rim pass leaves a rounder blob; the silhouette peels them, and the fitted templates are blurred too.
    // The bounds-normalised reading took this ring for a circle and this star for a diamond.
    [Theory]
    [InlineData("cross", "red", "gray")]
    [InlineData("ring", "orange", "blue")]
    [InlineData("star", "purple", "yellow")]
    public void ABlurredObjectKeepsItsShape(string shape, string color, string background)
    {
        var w = ShapesWorld.Default;
        var obj = new SceneObject(w.Shape(shape), w.Color(color), w.Pattern("solid"), w.Size("small"), w.Position("centre"), 0.5, 0.5, 0.3);
        var render = ShapesRenderer.Render(new Scene(w.Background(background), 1, [obj])).Image;
        var blurred = new ImageDegradation(1.3, 0).Apply(render, 1);
        var measured = Assert.Single(new ShapesAnalyzer(w).Analyze(blurred).Objects);
        Assert.Equal(shape, measured.Shape.Name);
        Assert.True(measured.ShapeIoU > 0.8, $"IoU {measured.ShapeIoU}");
    }

    [Fact]
    public void DegradationIsDeterministicAndChangesThePixels()
    {
        var image = new ShapesSampler(ShapesWorld.Default, 1).Sample(0).Image;
        var d = new ImageDegradation(1, 8);
        Assert.Equal(d.Apply(image, 5).Pixels, d.Apply(image, 5).Pixels);
        Assert.NotEqual(image.Pixels, d.Apply(image, 5).Pixels);
        Assert.Equal(image.Pixels, new ImageDegradation(0, 0).Apply(image, 5).Pixels);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageDegradation(-1, 0).Apply(image, 5));
    }
}
