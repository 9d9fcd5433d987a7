using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Shapes.Experiments;

public class ConceptPromptFileTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;
    private static string PromptFile => Path.Combine(TestPaths.RepoRoot, "samples", "experiment", "prompts.txt");

    [Fact]
    public void TheRepositorysPromptsGrowFromABackgroundToASecondObjectInAScene()
    {
        var prompts = ConceptPrompts.Load(PromptFile, World);
        Assert.True(prompts.Count >= 20, $"{prompts.Count} prompts");
        Assert.Equal(prompts.Select(p => p.Complexity).Order(), prompts.Select(p => p.Complexity));
        Assert.Contains(prompts, p => p.Position is null && p.Size is null && p.SecondObject is null);
        Assert.Contains(prompts, p => p.Position is not null && p.Size is null && p.SecondObject is null);
        Assert.Contains(prompts, p => p.Position is not null && p.Size is not null && p.SecondObject is null);
        Assert.True(prompts.Count(p => p.SecondObject is not null) >= 6);
        Assert.Contains(prompts, p => p.SecondObject is { Color: not null, Pattern: not null });
        // Every background of the world's scene kinds is asked for, and every position.
        Assert.Superset(World.Backgrounds.Where(b => b.Kind != BackgroundKind.Plain).ToHashSet(), prompts.Select(p => p.Background).ToHashSet());
        Assert.Superset(World.Positions.ToHashSet(), prompts.Where(p => p.Position is not null).Select(p => p.Position!).ToHashSet());
        // Every shipped concept keeps most prompts (it skips only backgrounds it blends into).
        foreach (var concept in ConceptSpec.LoadFolder(Path.Combine(TestPaths.RepoRoot, "samples", "concepts"), World))
            Assert.True(prompts.Count(p => concept.ContrastsWith(p.Background, World)) >= 15, concept.Name);
    }

    [Fact]
    public void EveryPromptWordIsOneClipTokenOfTheWorldsVocabulary()
    {
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"));
        var vocabulary = World.Vocabulary().ToHashSet();
        foreach (var prompt in ConceptPrompts.Load(PromptFile, World))
        {
            var words = prompt.Template.Split(' ').Where(w => w != "{}").ToArray();
            Assert.All(words, w => Assert.Contains(w, vocabulary));
            Assert.Equal(words.Length, tokenizer.EncodeWithoutSpecialTokens(string.Join(' ', words)).Count);
        }
    }

    [Fact]
    public void ParseReadsEveryRequestedAttribute()
    {
        var prompt = ConceptPrompts.Parse("an image of a small {V} next to an orange striped cross on a blue background", World);
        Assert.Equal("an image of a small {} next to an orange striped cross on a blue background", prompt.Template);
        Assert.Equal("small", prompt.Size?.Name);
        Assert.Null(prompt.Position);
        Assert.Equal(new PromptObject(World.Shape("cross"), World.Color("orange"), World.Pattern("striped"), null), prompt.SecondObject);
        Assert.Equal(
            [new("background", "blue"), new("size", "small"), new("second-shape", "cross"), new("second-color", "orange"), new("second-pattern", "striped")],
            prompt.RequestedAttributes);
        Assert.Equal(5, prompt.Complexity);
        Assert.Equal("an image of a small {V} next to an orange striped cross on a blue background", ConceptPrompts.Text(prompt));

        var placed = ConceptPrompts.Parse("a {V} in the snow at the top", World);
        Assert.Equal(("snow", "top"), (placed.Background.Name, placed.Position?.Name));
        Assert.Equal(["background", "position"], placed.RequestedAttributes.Select(a => a.Key));
    }

    public static TheoryData<string, string> BadPrompts => new()
    {
        { "a photo of a star on the beach", "needs exactly one {V}" },
        { "a photo of a {V} {V} on the beach", "needs exactly one {V}" },
        { "a photo of a {V}, on the beach", "needs exactly one {V}" },
        { "a photo of a {V}", "names no background" },
        { "a photo of a {V} on the moon", "has \"on\" where a background phrase" },
        { "a photo of a {V} on the beach in the snow", "names a background twice" },
        { "a photo of a {V} on the left on the right on the beach", "names a position twice" },
        { "a drawing of a {V} on the beach", "not one of the world's caption prefixes" },
        { "a photo of the {V} on the beach", "expects \"a\" or \"an\"" },
        { "a photo of a {V} next to a blue hexagon on the beach", "expects a shape word" },
        { "a photo of a {V} next to a white star on a white background", "a colour the world never draws there" },
    };

    [Theory]
    [MemberData(nameof(BadPrompts))]
    public void ABadLineIsRejectedWithTheFileAndLineNamed(string line, string expected)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("prompts.txt");
        File.WriteAllText(path, "# comment\n\na photo of a {V} on the beach\n" + line + "\n");
        var e = Assert.Throws<InvalidShapesSpecException>(() => ConceptPrompts.Load(path, World));
        Assert.Equal($"{path}:4", e.Source);
        Assert.Contains(expected, e.Problem);
    }

    [Fact]
    public void AFileWithoutPromptsOrTooLargeIsRejected()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string empty = dir.File("empty.txt");
        File.WriteAllText(empty, "# only a comment\n\n");
        Assert.Contains("holds no prompt", Assert.Throws<InvalidShapesSpecException>(() => ConceptPrompts.Load(empty, World)).Message);
        string large = dir.File("large.txt");
        File.WriteAllText(large, new string('#', ConceptPrompts.MaxFileBytes + 1));
        Assert.Contains("too large", Assert.Throws<InvalidShapesSpecException>(() => ConceptPrompts.Load(large, World)).Message);
        Assert.Throws<FileNotFoundException>(() => ConceptPrompts.Load(dir.File("missing.txt"), World));
    }
}
