using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes.Experiments;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes.ShippedModel;

/// <summary>
/// What the shipped Shapes model does, measured by the analyzer. Chance levels for a model that ignores its prompt:
/// shape 1/8, colour 1/9, background 1/11, position 1/5; the concept is new to the model, so the base model shows it in
/// none of its images. Every threshold below was fixed before the model it tests was trained (but for the two its test
/// says were set afterwards), well above chance and below the quality table's bars (which are measured on 400 images, not the 24 here).
/// </summary>
public class ShippedModelBehaviourTests(ShippedModelFixture fixture) : IClassFixture<ShippedModelFixture>
{
    private const double AttributeThreshold = 0.5;
    private const double PositionThreshold = 0.4;
    private const double TextGainThreshold = 0.05;
    private const double ContextThreshold = 0.5;
    private const double HeatmapIoUThreshold = 0.3;
    private const double WordUseThreshold = 0.5;

    [Fact]
    public void TheShippedFilesAreTheOnesTheManifestNames() =>
        Assert.Empty(ShapesModelManifest.Verify(ShippedModelFixture.ModelFolder));

    // A denoiser that ignored its text would have the same error with the right, the empty and a wrong caption.
    [Fact]
    public void TheDenoiserUsesItsTextAtHighNoise()
    {
        using var model = StableDiffusionComponents.Load(ShippedModelFixture.ModelFolder);
        var rows = ShapesConditioningProbe.Measure(model, ShippedModelFixture.World, images: 32, timesteps: [800]);
        var row = Assert.Single(rows);
        Assert.True(row.TextGain >= TextGainThreshold, $"text gain {row.TextGain:P1} at t=800");
        Assert.True(row.OtherCaption > row.OwnCaption, $"a wrong caption ({row.OtherCaption:F4}) is not worse than the right one ({row.OwnCaption:F4})");
    }

    // Which words the denoiser uses: swapping the background word of a full caption raised the error at t = 800 by
    // 336 % on 64 renders, the colour word by 99 % (`shapes diagnose --attributes`); a model that ignored a word would show
    // no rise. Size (+45 %) and shape (+26 %) are used less and not asserted; position is not used (docs/shapes-world.md).
    [Fact]
    public void TheDenoiserUsesTheBackgroundAndColourWordsOfACaption()
    {
        using var model = StableDiffusionComponents.Load(ShippedModelFixture.ModelFolder);
        var use = Assert.Single(ShapesConditioningProbe.MeasureAttributeUse(model, ShippedModelFixture.World, images: 16, timesteps: [800]));
        Assert.Equal(AttributeUse.Attributes.Order(StringComparer.Ordinal), use.Swapped.Keys.Order(StringComparer.Ordinal));
        Assert.True(use.Rise("background") >= WordUseThreshold, $"background swap raised the error by {use.Rise("background"):P0}");
        Assert.True(use.Rise("color") >= WordUseThreshold, $"colour swap raised the error by {use.Rise("color"):P0}");
    }

    // 24 held-out prompts (combinations never rendered in pretraining), one seed, the experiments' sampler settings.
    [Fact]
    public async Task GenerationFollowsPromptsItNeverSawInPretraining()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(ShippedModelFixture.ModelFolder).Build();
        var report = await ShapesModelQuality.MeasureAsync(pipeline, ShippedModelFixture.World, prompts: 24, seeds: 1,
            ShapesPersonalization.Generation with { HeatmapTokens = [] });
        double Accuracy(string name) => report.Attributes.Single(a => a.Attribute == name).Accuracy;
        // Shape is not asserted at the experiments' guidance of 7.5 (80.7 % on 400 images); see the next test for the model's own.
        Assert.True(Accuracy("color") >= AttributeThreshold, $"colour {Accuracy("color"):P0}");
        Assert.True(Accuracy("background") >= AttributeThreshold, $"background {Accuracy("background"):P0}");
        // Twice chance (five positions): a model that places the object where the starting noise suggests stays near 20 %.
        Assert.True(Accuracy("position") >= PositionThreshold, $"position {Accuracy("position"):P0}");
    }

    // The same 24 held-out prompts with the sampler settings the quality table is measured with (50 steps, the model's
    // guidance of 2, chosen on seen combinations). These two thresholds were set after that 400-image measurement (shape
    // 90.0 %, colour 99.3 %), far below it and far above chance (1/8, 1/9): they test that the asked shape is drawn at
    // all, which a model that ignores its prompt cannot do, not the table's bars.
    [Fact]
    public async Task AtItsOwnGuidanceTheModelDrawsTheAskedShapeAndColour()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(ShippedModelFixture.ModelFolder).Build();
        var report = await ShapesModelQuality.MeasureAsync(pipeline, ShippedModelFixture.World, prompts: 24, seeds: 1,
            new GenerationOptions { GuidanceScale = ShapesModelQuality.DefaultGuidanceScale });
        double Accuracy(string name) => report.Attributes.Single(a => a.Attribute == name).Accuracy;
        Assert.True(Accuracy("shape") >= 0.6, $"shape {Accuracy("shape"):P0}");
        Assert.True(Accuracy("color") >= 0.8, $"colour {Accuracy("color"):P0}");
    }

    // The VAE bounds what any generated image can show. A VAE with random weights reconstructs noise (background
    // right by chance, 1/11); the shipped one keeps the layout of every scene (100 % on 300 renders when measured).
    [Fact]
    public void TheVaeReconstructsTheBackgroundAndPositionOfHeldOutScenes()
    {
        using var components = StableDiffusionComponents.Load(ShippedModelFixture.ModelFolder);
        var shipped = ShapesModelQuality.MeasureReconstruction(components.Vae, ShippedModelFixture.World, prompts: 24);
        torch.manual_seed(11);
        using var untrained = new AttnDreamBooth.Models.Vae.AutoencoderKL(components.Vae.Config);
        var random = ShapesModelQuality.MeasureReconstruction(untrained, ShippedModelFixture.World, prompts: 24);
        double Accuracy(QualityReport report, string name) => report.Attributes.Single(a => a.Attribute == name).Accuracy;
        Assert.Equal(24, shipped.Samples.Count);
        Assert.True(Accuracy(shipped, "background") >= 0.9, $"shipped VAE: background {Accuracy(shipped, "background"):P0}");
        Assert.True(Accuracy(shipped, "position") >= 0.9, $"shipped VAE: position {Accuracy(shipped, "position"):P0}");
        Assert.True(Accuracy(random, "background") <= 0.3, $"random VAE: background {Accuracy(random, "background"):P0}");
    }

    // The ceiling the VAE puts on personalization, measured as the docs report it; what is asserted is the measurement's
    // own consistency and that a trained VAE keeps more of a concept than an untrained one.
    [Fact]
    public void TheConceptReconstructionCeilingScoresThePhotosAndTheVaesReconstructionsOfThem()
    {
        var world = ShippedModelFixture.World;
        var concept = AttnDreamBooth.Shapes.ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "harlequin-star.json"), world);
        using var components = StableDiffusionComponents.Load(ShippedModelFixture.ModelFolder);
        var shipped = Assert.Single(ShapesModelQuality.MeasureConceptReconstruction(components.Vae, world, [concept]));
        torch.manual_seed(11);
        using var untrained = new AttnDreamBooth.Models.Vae.AutoencoderKL(components.Vae.Config);
        var random = Assert.Single(ShapesModelQuality.MeasureConceptReconstruction(untrained, world, [concept]));

        Assert.Equal("harlequin-star", shipped.Concept);
        Assert.Equal(concept.Photos.Count, shipped.Photos.Count);
        Assert.Equal(concept.Photos.Count, shipped.Reconstructions.Count);
        Assert.All(shipped.Photos, p => Assert.True(p.Score >= 0.85, $"photo identity {p.Score:F2}"));
        var analyzer = new AttnDreamBooth.Shapes.ShapesAnalyzer(world);
        for (int i = 0; i < shipped.Images.Count; i++) Assert.Equal(analyzer.Identify(shipped.Images[i], concept).Score, shipped.Reconstructions[i].Score);
        Assert.True(shipped.ReconstructionIdentity > random.ReconstructionIdentity + 0.1,
            $"shipped VAE {shipped.ReconstructionIdentity:F2}, untrained {random.ReconstructionIdentity:F2}");
    }

    // Set after the guidance probe (docs/shapes-world.md, "Guidance, on the U-Net side": the demo's concept regenerated at
    // the model's guidance of 2 was present in 6 of the 16 images, against 1 at 7.5), at half of it: the base model has
    // never seen the concept's colours and outline, so a model that ignored [V] would draw it no more often than the base.
    [Fact]
    public void APersonalizationMakesTheConceptAppearWhereTheBaseModelDoesNot()
    {
        var trial = fixture.Trial;
        int personalized = trial.Personalized.Count(i => i.Verdict.ConceptPresent);
        int baseline = trial.Base.Count(i => i.Verdict.ConceptPresent);
        Assert.Equal(trial.Base.Count, trial.Personalized.Count);
        Assert.True(personalized >= 3 && personalized >= baseline + 3,
            $"the concept is present in {personalized} of {trial.Personalized.Count} personalized images and {baseline} of the base model's");
    }

    [Fact]
    public void ThePersonalizedModelStillFollowsTheRestOfThePrompt()
    {
        var trial = fixture.Trial;
        Assert.True(trial.BackgroundAccuracy >= ContextThreshold, $"background as asked in {trial.BackgroundAccuracy:P0}");
    }

    [Fact]
    public void TheTokensAttentionLiesOnTheObject()
    {
        var iou = fixture.Trial.MeanHeatmapIoU;
        Assert.NotNull(iou);
        Assert.True(iou >= HeatmapIoUThreshold, $"mean [V]-map IoU {iou:F2}");
    }
}
