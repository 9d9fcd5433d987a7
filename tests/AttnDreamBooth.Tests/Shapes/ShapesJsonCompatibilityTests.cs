using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.Tests.IO;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes;

/// <summary>
/// The Shapes tools' JSON files as earlier versions spelt them (tests/fixtures/written-before-snake-case, written by the
/// code of that time) still read, a pretraining checkpoint's recipe still reproduces the fingerprint it was recorded
/// with (so such a run resumes and exports), and the files written now are snake_case.
/// </summary>
public sealed class ShapesJsonCompatibilityTests
{
    private const string FixtureRecipeFingerprint = "19e5b999dd11c59ec70f9a454276fb94399a039382b767583be94b577799862d";

    private static string Fixture(string name) => Path.Combine(TestPaths.FixturesRoot, "written-before-snake-case", name);

    private static PretrainingRecipe FixtureRecipe() => PretrainingRecipe.Default with { VaeSteps = 10, UNetSteps = 20 };

    [Fact]
    public void ARecipeWrittenBeforeReadsBackWithItsFingerprintAndIsNowWrittenInSnakeCase()
    {
        string old = File.ReadAllText(Fixture("pretraining-recipe.json"));
        Assert.Contains("\"u_net_steps\": 20", old);
        Assert.Contains("\"prediction_type\": \"VPrediction\"", old);
        var read = PretrainingRecipe.FromJson(old);
        Assert.Equal(FixtureRecipe(), read with { Architecture = FixtureRecipe().Architecture });
        Assert.Equal(FixtureRecipe().Architecture.UNet.BlockOutChannels, read.Architecture.UNet.BlockOutChannels);
        Assert.Equal(FixtureRecipeFingerprint, read.Fingerprint());
        Assert.Equal(FixtureRecipeFingerprint, FixtureRecipe().Fingerprint());

        string json = FixtureRecipe().ToJson();
        var keys = SnakeCaseJson.AssertKeys(json);
        Assert.Contains("unet_steps", keys);
        Assert.Contains("unet", keys);
        Assert.DoesNotContain("u_net_steps", keys);
        Assert.Contains("\"prediction_type\": \"v_prediction\"", json);
        Assert.Equal(FixtureRecipeFingerprint, PretrainingRecipe.FromJson(json).Fingerprint());
    }

    [Theory]
    [InlineData("probe-epsilon-400.json", "51b44d6658fd974f8f73bdd89e059f0784971b95f5ecb9d88ce041e2548362c0")]
    [InlineData("probe-v-400.json", "3d3a03cb8062b02ce78dc1b12a0ec602d0b61763d6a23be1d3a8cffa669af82a")]
    public void TheSampleRecipesAreSpeltAsRecipesAreWrittenAndKeepTheirFingerprints(string file, string fingerprint)
    {
        // The fingerprints are those of the same recipes in the earlier spelling (u_net_steps, "Epsilon").
        string json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes", file));
        Assert.Contains("unet_steps", SnakeCaseJson.AssertKeys(json));
        Assert.Equal(fingerprint, PretrainingRecipe.FromJson(json).Fingerprint());
    }

    [Fact]
    public void APretrainingCheckpointWrittenInPascalCaseReadsBackAndIsNowWrittenInSnakeCase()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string folder = Path.Combine(temp.File("old"), "checkpoint-1-0000002");
        Directory.CreateDirectory(folder);
        File.Copy(Fixture("pretraining-checkpoint.json"), Path.Combine(folder, PretrainingCheckpoint.JsonFile));
        using (var x = torch.zeros(2))
            SafetensorsWriter.Write(Path.Combine(folder, PretrainingCheckpoint.StateFile), new Dictionary<string, torch.Tensor> { ["x"] = x });

        var (found, state) = PretrainingCheckpoint.ReadState(temp.File("old"));
        Assert.Equal(folder, found);
        AssertFixtureState(state);
        Assert.Equal(FixtureRecipeFingerprint, state.RecipeFingerprint);
        var recipe = ShapesModelExporter.ReadRecipe(state, Path.Combine(folder, PretrainingCheckpoint.JsonFile));
        Assert.Equal(FixtureRecipe(), recipe with { Architecture = FixtureRecipe().Architecture });
        Assert.Equal(state.RecipeFingerprint, recipe.Fingerprint());

        using (var x = torch.zeros(2))
        {
            var fresh = state with { RecipeJson = FixtureRecipe().ToJson() };
            string written = PretrainingCheckpoint.Write(temp.File("new"), fresh, new Dictionary<string, torch.Tensor> { ["x"] = x });
            string text = File.ReadAllText(Path.Combine(written, PretrainingCheckpoint.JsonFile));
            Assert.Equal(["format_version", "recipe_fingerprint", "recipe_json", "phase", "step_in_phase", "scaling_factor", "vae_losses", "unet_losses", "unet_mse",
                "vae_seconds", "unet_seconds", "written_at"], SnakeCaseJson.AssertKeys(text));
            Assert.Contains("\"phase\": \"unet\"", text);
            var (_, reread) = PretrainingCheckpoint.ReadState(written);
            AssertFixtureState(reread);
            Assert.Equal(FixtureRecipeFingerprint, ShapesModelExporter.ReadRecipe(reread, written).Fingerprint());
        }
    }

    private static void AssertFixtureState(PretrainingCheckpointState state)
    {
        Assert.Equal(1, state.FormatVersion);
        Assert.Equal(PretrainingPhase.UNet, state.Phase);
        Assert.Equal(2, state.StepInPhase);
        Assert.Equal(0.5, state.ScalingFactor);
        Assert.Equal([0.1], state.VaeLosses);
        Assert.Equal([0.2, 0.3], state.UNetLosses);
        Assert.Equal([0.4, 0.5], state.UNetMse);
        Assert.Equal((1.5, 2.5), (state.VaeSeconds, state.UNetSeconds));
    }

    [Fact]
    public void AnExperimentCellWrittenInCamelCaseIsStillReusedAndIsNowWrittenInSnakeCase()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string root = temp.Path;
        Directory.CreateDirectory(Path.Combine(root, "images"));
        File.WriteAllBytes(Path.Combine(root, "images", "a.png"), [1]);
        File.WriteAllBytes(Path.Combine(root, "images", "a-heatmap.png"), [1]);
        string old = Path.Combine(root, "cells", "star", "attndreambooth");
        Directory.CreateDirectory(old);
        File.Copy(Fixture("experiment-cell.json"), Path.Combine(old, PersonalizationExperiment.CellFile));

        var (cell, scores) = ExperimentCellFile.TryRead(old, "fp") ?? throw new Xunit.Sdk.XunitException("the cell written before was not reused");
        AssertFixtureCell(cell, scores);
        Assert.Null(ExperimentCellFile.TryRead(old, "another"));

        string written = Path.Combine(root, "cells", "star", "new");
        ExperimentCellFile.Write(written, "fp", cell, scores, [0.5, 0.25]);
        string text = File.ReadAllText(Path.Combine(written, PersonalizationExperiment.CellFile));
        var keys = SnakeCaseJson.AssertKeys(text);
        Assert.Contains("heatmap_iou", keys);
        Assert.Contains("skipped_prompts", keys);
        Assert.Contains("\"after_stage\": \"cross_attention\"", text);
        Assert.Contains("\"method\": \"attndreambooth\"", text);
        var again = ExperimentCellFile.TryRead(written, "fp") ?? throw new Xunit.Sdk.XunitException("the new cell was not reused");
        AssertFixtureCell(again.Cell, again.Scores);
    }

    private static void AssertFixtureCell(ExperimentCell cell, IReadOnlyList<ExperimentImageScore> scores)
    {
        Assert.Equal(("star", PersonalizationMethod.AttnDreamBooth, false, 12), (cell.Concept, cell.Method, cell.Reused, cell.Steps));
        Assert.Equal((TimeSpan.FromSeconds(3.5), TimeSpan.FromSeconds(1.25)), (cell.Training, cell.Generation));
        Assert.Equal([2], cell.SkippedPrompts);
        var s = Assert.Single(scores);
        Assert.Equal(TrainingStage.CrossAttention, s.AfterStage);
        // Stored before the IoU was measured per layer resolution: none, rather than made-up values.
        Assert.Empty(s.HeatmapIoUByResolution);
        Assert.Equal(("star", 0, "a photo of {}", 1, 7L), (s.Concept, s.PromptIndex, s.Prompt, s.Complexity, s.Seed));
        Assert.Equal(new ConceptIdentity(0.5, 0.6, 0.7, 0.8, 0.9, null, 0.25, new TextureStatistics(0.1, 0.2, 0.3, 40)), s.Identity);
        Assert.Equal((0.75, 0.5, (double?)null), (s.ReferenceIdentity, s.Text, s.HeatmapIoU));
        Assert.Equal(new Dictionary<int, double> { [8] = 0.5, [16] = 0.25 }, s.WordShares);
        Assert.Equal(new PromptAttributeCheck("color", "red", "red"), Assert.Single(s.Attributes));
        Assert.Equal(("images/a.png", "images/a-heatmap.png"), (s.Image, s.Heatmap));
    }

    [Fact]
    public void AQualityReportIsWrittenInSnakeCase()
    {
        // What `shapes quality --out` writes.
        var report = new QualityReport(2, 1, new AttnDreamBooth.StableDiffusion.GenerationOptions { Steps = 4 }, [new AttributeAccuracy("color", 1, 2)], []);
        string json = JsonFiles.Serialize(report);
        var keys = SnakeCaseJson.AssertKeys(json);
        Assert.Contains("seeds_per_prompt", keys);
        Assert.Contains("guidance_scale", keys);
    }
}
