using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;

namespace AttnDreamBooth.Tests.Shapes.Experiments;

public class ConceptPromptsTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;

    [Fact]
    public void NewContextsAvoidThePhotoBackgroundsAndThoseTheConceptBlendsInto()
    {
        foreach (var concept in ConceptSpec.LoadFolder(Path.Combine(TestPaths.RepoRoot, "samples", "concepts"), World))
        {
            var prompts = ConceptPrompts.NewContexts(World, concept);
            Assert.NotEmpty(prompts);
            Assert.All(prompts, p =>
            {
                Assert.DoesNotContain(p.Background, concept.Photos.Backgrounds);
                Assert.True(concept.ContrastsWith(p.Background, World), $"{concept.Name} on {p.Background.Name}");
                Assert.Contains(p.Background.Phrase, p.Template);
                if (p.Position is not null) Assert.Contains(p.Position.Phrase, p.Template);
                Assert.Single(System.Text.RegularExpressions.Regex.Matches(p.Template, @"\{\}"));
            });
            var backgrounds = prompts.Select(p => p.Background).Distinct().ToList();
            Assert.Equal(2 * backgrounds.Count, prompts.Count);
        }
    }

    [Fact]
    public void TheHarlequinStarsBlackOutlineRulesOutDarkBackgrounds()
    {
        var concept = ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "harlequin-star.json"), World);
        Assert.False(concept.ContrastsWith(World.Background("black"), World));
        Assert.True(concept.ContrastsWith(World.Background("beach"), World));
        Assert.DoesNotContain(ConceptPrompts.NewContexts(World, concept), p => p.Background.Name is "black" or "white" or "green");
    }

    [Fact]
    public void WithSubjectReplacesThePlaceholder()
    {
        var prompt = new ConceptPrompt("a photo of a {} on the beach", World.Background("beach"), null);
        Assert.Equal("a photo of a star on the beach", prompt.WithSubject("star"));
    }
}
