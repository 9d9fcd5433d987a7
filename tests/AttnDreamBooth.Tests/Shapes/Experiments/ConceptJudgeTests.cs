using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;

namespace AttnDreamBooth.Tests.Shapes.Experiments;

public class ConceptJudgeTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;
    private static ConceptSpec Harlequin => ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "harlequin-star.json"), World);

    private static ShapesRendering ConceptOn(string background, string position)
    {
        var concept = Harlequin;
        var pos = World.Position(position);
        var obj = concept.Object(World, World.Size("large"), pos, pos.X, pos.Y, World.Size("large").Side);
        return ShapesRenderer.Render(new Scene(World.Background(background), 7, [obj]), World.ImageSize);
    }

    [Fact]
    public void ARenderOfTheConceptWhereAskedPassesEveryCheck()
    {
        var render = ConceptOn("beach", "left");
        var prompt = new ConceptPrompt("a photo of a {} on the left on the beach", World.Background("beach"), World.Position("left"));
        var verdict = new ConceptJudge(World, Harlequin).Judge(render.Image, prompt, "p", 3);
        Assert.True(verdict.BackgroundFollowed);
        Assert.True(verdict.PositionFollowed);
        Assert.True(verdict.ConceptPresent, verdict.Identity.ToString());
        Assert.Null(verdict.HeatmapIoU);
        Assert.Equal(3, verdict.Seed);
    }

    [Fact]
    public void APlainStarOfTheWorldIsNotTheConceptAndAWrongPlaceIsReported()
    {
        var obj = new SceneObject(World.Shape("star"), World.Color("red"), World.Pattern("checkered"), World.Size("large"), World.Position("right"), 0.7, 0.5, 0.46);
        var render = ShapesRenderer.Render(new Scene(World.Background("snow"), 7, [obj]), World.ImageSize);
        var prompt = new ConceptPrompt("a photo of a {} on the left on the beach", World.Background("beach"), World.Position("left"));
        var verdict = new ConceptJudge(World, Harlequin).Judge(render.Image, prompt, "p", 0);
        Assert.False(verdict.ConceptPresent, verdict.Identity.ToString());
        Assert.False(verdict.BackgroundFollowed);
        Assert.False(verdict.PositionFollowed);
        Assert.Equal("snow", verdict.MeasuredBackground);
    }

    [Fact]
    public void AMapOnTheObjectScoresHighAndAMapElsewhereScoresZero()
    {
        var render = ConceptOn("gray", "left");
        var mask = render.Masks[0];
        const int side = 16;
        int cell = mask.Width / side;
        var onObject = new float[side * side];
        var elsewhere = new float[side * side];
        for (int gy = 0; gy < side; gy++)
            for (int gx = 0; gx < side; gx++)
            {
                bool centre = mask.Contains(gx * cell + cell / 2, gy * cell + cell / 2);
                bool touched = Enumerable.Range(0, cell * cell).Any(k => mask.Coverage[(gy * cell + k / cell) * mask.Width + gx * cell + k % cell] > 0);
                onObject[gy * side + gx] = centre ? 1f : 0.1f;
                elsewhere[gy * side + gx] = touched ? 0f : 1f;
            }
        Assert.True(ConceptJudge.MaskIoU(onObject, mask) >= 0.8);
        Assert.Equal(0, ConceptJudge.MaskIoU(elsewhere, mask));
        var prompt = new ConceptPrompt("a photo of a {} on the left", World.Background("gray"), World.Position("left"));
        Assert.True(new ConceptJudge(World, Harlequin).Judge(render.Image, prompt, "p", 0, onObject).HeatmapIoU >= 0.8);
    }

    [Fact]
    public void AMapThatIsNotASquareGridIsRejected()
    {
        var mask = ConceptOn("gray", "left").Masks[0];
        Assert.Throws<ArgumentException>(() => ConceptJudge.MaskIoU(new float[15], mask));
        Assert.Throws<ArgumentException>(() => ConceptJudge.MaskIoU(new float[9 * 9], mask));
    }
}
