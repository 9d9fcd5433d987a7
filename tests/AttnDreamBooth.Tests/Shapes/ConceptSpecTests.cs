using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;

namespace AttnDreamBooth.Tests.Shapes;

public class ConceptSpecTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;
    private static string Folder => Path.Combine(TestPaths.RepoRoot, "samples", "concepts");

    [Fact]
    public void ShippedConceptsCoverFourCategoriesWithOneTuningConcept()
    {
        var concepts = ConceptSpec.LoadFolder(Folder, World);
        Assert.True(concepts.Count >= 6);
        Assert.True(concepts.Select(c => c.Category).Distinct().Count() >= 4);
        Assert.Equal("harlequin-star", Assert.Single(concepts, c => c.IsTuning).Name);
        Assert.All(concepts, c => Assert.Equal(c.Name + ".json", Path.GetFileName(Path.Combine(Folder, c.Name + ".json"))));
    }

    [Fact]
    public void PhotosAreDeterministicAndShowTheConceptWhereThePlanSays()
    {
        var concept = ConceptSpec.Load(Path.Combine(Folder, "harlequin-star.json"), World);
        var a = concept.RenderPhotos(World);
        var b = concept.RenderPhotos(World);
        Assert.Equal(concept.Photos.Count, a.Count);
        var analyzer = new ShapesAnalyzer(World);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Image.Pixels, b[i].Image.Pixels);
            var found = analyzer.Analyze(a[i].Image);
            Assert.Equal(concept.Photos.Backgrounds[i % concept.Photos.Backgrounds.Count].Name, found.Background.Name);
            var obj = Assert.Single(found.Objects);
            Assert.Equal("star", obj.Shape.Name);
            Assert.Equal(concept.Photos.Positions[i % concept.Photos.Positions.Count].Name, obj.Position.Name);
        }
    }

    // Thresholds: the concept's own renders score ≥ 0.85 (measured 0.90–0.99 across the shipped concepts), objects of
    // the same category from the pretraining world and other concepts score ≤ 0.6 (measured ≤ 0.55).
    [Fact]
    public void IdentityIsHighOnTheConceptAndLowOnOtherObjectsOfItsCategory()
    {
        var concepts = ConceptSpec.LoadFolder(Folder, World);
        var analyzer = new ShapesAnalyzer(World);
        var sampler = new ShapesSampler(World, 4242, new ShapesSamplerOptions { SecondObjectProbability = 0 });
        foreach (var concept in concepts)
        {
            foreach (var photo in concept.RenderPhotos(World))
            {
                var id = analyzer.Identify(photo.Image, concept);
                Assert.True(id.Score >= 0.85, $"{concept.Name} on its own photo: {id}");
            }
            foreach (var (_, scene) in WorldScenesOf(sampler, concept.Category, 25))
            {
                var id = analyzer.Identify(ShapesRenderer.Render(scene).Image, concept);
                Assert.True(id.Score <= 0.6, $"{concept.Name} vs world {ShapesCaptions.Full(scene)}: {id}");
            }
            foreach (var other in concepts.Where(o => o != concept && o.Category == concept.Category))
                foreach (var photo in other.RenderPhotos(World))
                    Assert.True(analyzer.Identify(photo.Image, concept).Score <= 0.6, $"{concept.Name} vs {other.Name}");
        }
    }

    // A decoder blurs what it draws by about a pixel (the shipped VAE's reconstructions, docs/shapes-world.md, "What caps
    // a concept"), so the identity must still tell the concept from its category there. Renders of ten photos per concept
    // from a plan seed of their own, blurred by σ = 1 px, must count as present (≥ 0.7, the presence threshold); world
    // objects of the category and the category's other concepts, blurred the same, must stay ≤ 0.6. The identity's
    // blur handling was developed on other seeds (plan seed 9001, world seed 9002), not on these.
    [Fact]
    public void IdentityHoldsOnRendersBlurredByAPixelAndStaysLowOnBlurredObjectsOfTheCategory()
    {
        var concepts = ConceptSpec.LoadFolder(Folder, World);
        var analyzer = new ShapesAnalyzer(World);
        var blur = new ImageDegradation(1.0, 0);
        var sampler = new ShapesSampler(World, 5151, new ShapesSamplerOptions { SecondObjectProbability = 0 });
        foreach (var concept in concepts)
        {
            var photos = (concept with { Photos = concept.Photos with { Count = 10, Seed = 5150 } }).RenderPhotos(World);
            for (int i = 0; i < photos.Count; i++)
            {
                var id = analyzer.Identify(blur.Apply(photos[i].Image, i), concept);
                Assert.True(id.Score >= 0.7, $"{concept.Name}, blurred photo {i}: {id}");
            }
            foreach (var (i, scene) in WorldScenesOf(sampler, concept.Category, 25))
            {
                var id = analyzer.Identify(blur.Apply(ShapesRenderer.Render(scene).Image, i), concept);
                Assert.True(id.Score <= 0.6, $"{concept.Name} vs blurred world {ShapesCaptions.Full(scene)}: {id}");
            }
            foreach (var other in concepts.Where(o => o != concept && o.Category == concept.Category))
                foreach (var photo in other.RenderPhotos(World))
                    Assert.True(analyzer.Identify(blur.Apply(photo.Image, 0), concept).Score <= 0.6, $"{concept.Name} vs blurred {other.Name}");
            // Random appearances of the category (random colours, a world pattern, an outline two times in three, an
            // emblem one time in two) can come close to a concept by chance; none may count as the concept.
            var rng = new WorldRandom(5152);
            for (int k = 0; k < 10; k++)
            {
                var lookalike = concept with { Appearance = NovelAppearances.Draw(World, rng), Photos = concept.Photos with { Count = 1, Seed = 5160 + k } };
                var image = lookalike.RenderPhotos(World)[0].Image;
                foreach (var degraded in new[] { image, blur.Apply(image, k) })
                {
                    var id = analyzer.Identify(degraded, concept);
                    Assert.True(id.Score < ConceptJudge.PresenceThreshold, $"{concept.Name} vs random appearance {k}: {id}");
                }
            }
        }
    }

    [Fact]
    public void AnImageWithoutObjectsHasZeroIdentity()
    {
        var concept = ConceptSpec.Load(Path.Combine(Folder, "harlequin-star.json"), World);
        var empty = ShapesRenderer.Render(new Scene(World.Background("white"), 1, [])).Image;
        Assert.Equal(ConceptIdentity.None, new ShapesAnalyzer(World).Identify(empty, concept));
    }

    public static TheoryData<string, string, string> BadConcepts => new()
    {
        { "\"category\": \"star\"", "\"category\": \"hexagon\"", "$.category: 'hexagon' is not a shape" },
        { "\"pattern\": \"checkered\"", "\"pattern\": \"plaid\"", "$.appearance.pattern: 'plaid' is not a pattern" },
        { "\"backgrounds\": [ \"white\", \"green\" ]", "\"backgrounds\": [ \"black\" ]", "the outline colour lacks contrast on 'black'" },
        { "\"outlineWidth\": 0.08", "\"outlineWidth\": 0.5", "$.appearance.outlineWidth = 0.5 is outside" },
        { "\"primary\": \"#e0283c\"", "\"primary\": \"#e0283c", "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(BadConcepts))]
    public void BadConceptsAreRejectedWithTheFieldNamed(string find, string replace, string expected)
    {
        string json = File.ReadAllText(Path.Combine(Folder, "harlequin-star.json"));
        Assert.Contains(find, json);
        var e = Assert.Throws<InvalidShapesSpecException>(() => ConceptSpec.Parse(json.Replace(find, replace, StringComparison.Ordinal), World, "c.json"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AnAppearancePretrainingAlreadyShowsIsRejected()
    {
        string json = """
            { "name": "plain", "description": "d", "category": "star",
              "appearance": { "primary": "#dc2626", "secondary": "#6e1313", "pattern": "striped", "outline": "#000000", "outlineWidth": 0 },
              "photos": { "count": 2, "seed": 1, "backgrounds": [ "white" ], "positions": [ "centre" ], "sizes": [ "large" ] } }
            """;
        var e = Assert.Throws<InvalidShapesSpecException>(() => ConceptSpec.Parse(json, World, "plain.json"));
        Assert.Contains("what pretraining already shows (a red striped object)", e.Message);
    }

    /// <summary>The first <paramref name="count"/> scenes of <paramref name="sampler"/> whose object is of <paramref name="category"/>, with their indices.</summary>
    private static IEnumerable<(long Index, Scene Scene)> WorldScenesOf(ShapesSampler sampler, ShapeSpec category, int count)
    {
        int found = 0;
        for (long i = 0; found < count; i++)
        {
            var scene = sampler.Describe(i).Scene;
            if (scene.Objects[0].Shape != category) continue;
            found++;
            yield return (i, scene);
        }
    }
}
