using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Tests.Shapes.ShippedModel;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

public class ShapesConditioningProbeTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;

    // A swapped caption must differ from the full one in that attribute only, or the probe would measure two words at once.
    [Theory]
    [InlineData("size")]
    [InlineData("color")]
    [InlineData("pattern")]
    [InlineData("shape")]
    [InlineData("position")]
    [InlineData("background")]
    public void ASwapChangesOnlyItsAttributeAndReachesEveryOtherValue(string attribute)
    {
        var sampler = new ShapesSampler(World, 5, new ShapesSamplerOptions { SecondObjectProbability = 0 });
        var random = new WorldRandom(3);
        var seen = new HashSet<string>();
        for (int i = 0; i < 200; i++)
        {
            var scene = sampler.Describe(i).Scene;
            var swapped = ShapesConditioningProbe.Swap(scene, attribute, World, random);
            string before = Value(scene, attribute), after = Value(swapped, attribute);
            Assert.NotEqual(before, after);
            seen.Add(after);
            foreach (string other in AttributeUse.Attributes.Where(a => a != attribute))
                Assert.Equal(Value(scene, other), Value(swapped, other));
            Assert.NotEqual(ShapesCaptions.Full(scene), ShapesCaptions.Full(swapped));
            Assert.Equal(scene.Objects[0].CenterX, swapped.Objects[0].CenterX);
        }
        Assert.Equal(ValuesOf(attribute), seen.Count);
    }

    [Fact]
    public void AnUnknownAttributeIsRefused()
    {
        var scene = new ShapesSampler(World, 5, new ShapesSamplerOptions { SecondObjectProbability = 0 }).Describe(0).Scene;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ShapesConditioningProbe.Swap(scene, "texture", World, new WorldRandom(1)));
        Assert.Contains("texture", e.Message, StringComparison.Ordinal);
    }

    // An encoder that cannot tell the shape words apart must measure exactly 0 for shape and still see the other words;
    // made so by giving every shape word the embedding row of "circle" in the shipped model.
    [Fact]
    public void TextSeparationIsZeroExactlyForWordsTheEncoderCannotTellApart()
    {
        using var model = StableDiffusionComponents.Load(ShippedModelFixture.ModelFolder);
        var before = ShapesConditioningProbe.MeasureTextSeparation(model, World, images: 8).ToDictionary(s => s.Attribute);
        Assert.Equal(AttributeUse.Attributes, before.Keys);
        Assert.True(before["shape"].PeakMove > 0.01, $"shape peak move {before["shape"].PeakMove}");
        var table = model.TextEncoder.TokenEmbeddingWeight;
        int Id(string word) => Assert.Single(model.Tokenizer.EncodeWithoutSpecialTokens(word));
        using (torch.no_grad())
            foreach (var shape in World.Shapes)
                table[Id(shape.Word)].copy_(table[Id(World.Shapes[0].Word)]);
        var after = ShapesConditioningProbe.MeasureTextSeparation(model, World, images: 8).ToDictionary(s => s.Attribute);
        Assert.Equal(0, after["shape"].MeanMove);
        Assert.Equal(0, after["shape"].PeakMove);
        // The other attributes' captions hold the (now merged) shape word too, so their values change but not vanish.
        foreach (string attribute in AttributeUse.Attributes.Where(a => a != "shape"))
            Assert.True(after[attribute].PeakMove >= after[attribute].MeanMove && after[attribute].PeakMove > 0.01, attribute);
    }

    private static string Value(Scene scene, string attribute)
    {
        var o = scene.Objects[0];
        return attribute switch
        {
            "size" => o.Size.Name,
            "color" => o.Color.Name,
            "pattern" => o.Pattern.Name,
            "shape" => o.Shape.Name,
            "position" => o.Position.Name,
            "background" => scene.Background.Name,
            _ => throw new ArgumentOutOfRangeException(nameof(attribute)),
        };
    }

    private static int ValuesOf(string attribute) => attribute switch
    {
        "size" => World.Sizes.Count,
        "color" => World.Colors.Count,
        "pattern" => World.Patterns.Count,
        "shape" => World.Shapes.Count,
        "position" => World.Positions.Count,
        "background" => World.Backgrounds.Count,
        _ => throw new ArgumentOutOfRangeException(nameof(attribute)),
    };
}
