using AttnDreamBooth.Shapes;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Shapes;

public class ShapesWorldTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;

    [Fact]
    public void DefaultWorldHasTheVocabularyTheIssueAsksFor()
    {
        Assert.True(World.Shapes.Count >= 6, $"{World.Shapes.Count} shapes");
        Assert.True(World.Colors.Count >= 8, $"{World.Colors.Count} colours");
        Assert.Equal(["solid", "striped", "dotted", "checkered"], World.Patterns.Select(p => p.Name));
        Assert.True(World.Backgrounds.Count(b => b.Kind == BackgroundKind.Plain) >= 6);
        Assert.True(World.Backgrounds.Select(b => b.Kind).Where(k => k != BackgroundKind.Plain).Distinct().Count() >= 3);
        Assert.Equal(["small", "large"], World.Sizes.Select(s => s.Name));
        Assert.Equal(["centre", "left", "right", "top", "bottom"], World.Positions.Select(p => p.Name));
        Assert.True(World.HeldOut.Count >= 10);
        Assert.Equal(64, World.ImageSize);
    }

    [Fact]
    public void EveryCaptionWordIsOneTokenOfTheRealClipVocabulary()
    {
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"));
        Assert.True(tokenizer.BaseVocabularySize > 49000, "the fixture tokenizer must carry the real CLIP vocabulary");
        var notSingle = World.Vocabulary().Where(w => tokenizer.EncodeWithoutSpecialTokens(w).Count != 1).ToArray();
        Assert.Empty(notSingle);

        var sampler = new ShapesSampler(World, seed: 5, new ShapesSamplerOptions { SecondObjectProbability = 0.3 });
        for (int i = 0; i < 400; i++)
        {
            string caption = sampler.Describe(i).Caption;
            int words = caption.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            Assert.Equal(words, tokenizer.EncodeWithoutSpecialTokens(caption).Count);
        }
    }

    [Fact]
    public void IncompatiblePairsAreExactlyTheLowContrastOnes()
    {
        var pairs = World.IncompatiblePairs();
        Assert.Contains(pairs, p => p.Color.Name == "white" && p.Background.Name == "white");
        Assert.Contains(pairs, p => p.Color.Name == "green" && p.Background.Name == "grass");
        Assert.DoesNotContain(pairs, p => p.Color.Name == "red" && p.Background.Name == "white");
        // Every background keeps most colours, so the world stays rich.
        Assert.All(World.Backgrounds, b => Assert.True(World.Colors.Count(c => World.IsCompatible(c, b)) >= World.Colors.Count - 2, b.Name));
    }

    [Fact]
    public void LoadReadsAFileAndNamesItInErrors()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("world.json");
        File.WriteAllText(path, File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "src", "AttnDreamBooth.Shapes", "world.json")));
        var loaded = ShapesWorld.Load(path);
        Assert.Equal(World.Shapes, loaded.Shapes);
        Assert.Equal(World.Colors, loaded.Colors);

        File.WriteAllText(path, "{ \"name\": ");
        var e = Assert.Throws<InvalidShapesSpecException>(() => ShapesWorld.Load(path));
        Assert.Equal(path, e.Source);
        Assert.Contains("not valid JSON", e.Message);
        Assert.Throws<FileNotFoundException>(() => ShapesWorld.Load(dir.File("missing.json")));
    }

    public static TheoryData<string, string, string> BadSpecs => new()
    {
        { "\"inkShade\": 0.5,", "\"inkShade\": 1.5,", "$.inkShade = 1.5 is outside" },
        { "{ \"name\": \"circle\", \"word\": \"circle\",", "{ \"name\": \"circle\", \"word\": \"round thing\",", "$.shapes[0].word 'round thing' must be one lower-case word" },
        { "\"path\": \"M0,0 H1 V1 H0 Z\"", "\"path\": \"M0,0 Q\"", "$.shapes[1].path is not valid SVG path data" },
        { "\"rgb\": \"#dc2626\"", "\"rgb\": \"red\"", "$.colors[0].rgb 'red' is not a colour of the form #rrggbb" },
        { "\"kind\": \"stripes\"", "\"kind\": \"zigzag\"", "$.patterns[1].kind 'zigzag' is not one of solid, stripes, dots, checker" },
        { "{ \"name\": \"orange\", \"word\": \"orange\"", "{ \"name\": \"red\", \"word\": \"orange\"", "$.colors names 'red' twice" },
        { "\"sky\": \"#c3d2e6\", \"ground\": \"#fafcff\", \"flake\": \"#ffffff\"", "\"sky\": \"#c3d2e6\", \"ground\": \"#fafcff\"", "$.backgrounds[7].colors.flake is missing" },
        { "\"base\": \"#fafafa\"", "\"base\": \"#fafafa\", \"fog\": \"#ffffff\"", "$.backgrounds[0].colors.fog is not a colour role of a plain background" },
        { "{ \"shape\": \"star\", \"color\": \"red\", \"background\": \"beach\" }", "{ \"shape\": \"hexagon\", \"color\": \"red\" }", "$.heldOut[0].shape 'hexagon' is not a shape of this world" },
        { "{ \"shape\": \"star\", \"color\": \"red\", \"background\": \"beach\" }", "{ \"color\": \"green\", \"background\": \"grass\" }", "$.heldOut[0] (color=green background=grass) can never be rendered" },
        { "{ \"shape\": \"star\", \"color\": \"red\", \"background\": \"beach\" }", "{ }", "$.heldOut[0] names no attribute" },
        { "\"phrase\": \"in the snow\"", "\"phrase\": \"In the snow\"", "$.backgrounds[7].phrase 'In the snow' must be lower-case" },
        { "\"minimumContrast\": 36", "\"minimumContrast\": 400", "has no colour with contrast" },
        { "\"keepSize\": 0.5,", "", "$.captions.keepSize is missing" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void BadSpecsAreRejectedWithTheFieldNamed(string find, string replace, string expected)
    {
        string json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "src", "AttnDreamBooth.Shapes", "world.json"));
        int at = json.IndexOf(find, StringComparison.Ordinal);
        Assert.True(at >= 0, $"test setup: '{find}' not in world.json");
        string bad = json[..at] + replace + json[(at + find.Length)..];
        var e = Assert.Throws<InvalidShapesSpecException>(() => ShapesWorld.Parse(bad, "bad.json"));
        Assert.StartsWith("bad.json: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void LookupsNameTheKnownValues()
    {
        Assert.Equal("star", World.Shape("star").Word);
        Assert.Equal("checked", World.Pattern("checkered").Word);
        var e = Assert.Throws<ArgumentException>(() => World.Color("teal"));
        Assert.Contains("red", e.Message);
    }
}
