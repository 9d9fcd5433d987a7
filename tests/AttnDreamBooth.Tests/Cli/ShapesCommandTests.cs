using System.Text.Json;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Tests.IO;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>The <c>shapes render / analyze / accuracy</c> commands run in-process.</summary>
public sealed class ShapesCommandTests
{
    [Fact]
    public async Task RenderWritesTheSamplersImagesAndCaptionsAndAnalyzeReadsThemBack()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string outDir = Path.Combine(temp.Path, "r");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "render", "--seed", "5", "--count", "4", "--grid-columns", "2", "--out", outDir], console);
        Assert.True(exit == 0, text.ToString());
        var lines = File.ReadAllLines(Path.Combine(outDir, ShapesCommand.CaptionsFile));
        Assert.Equal(4, lines.Length);
        Assert.True(File.Exists(Path.Combine(outDir, ShapesCommand.GridFile)));
        var sampler = new ShapesSampler(ShapesWorld.Default, 5);
        for (int i = 0; i < 4; i++)
        {
            Assert.Contains("center_x", SnakeCaseJson.AssertKeys(lines[i]));
            using var line = JsonDocument.Parse(lines[i]);
            var expected = sampler.Sample(i);
            Assert.Equal(expected.Caption, line.RootElement.GetProperty("caption").GetString());
            string file = Path.Combine(outDir, line.RootElement.GetProperty("file").GetString()!);
            Assert.Equal(expected.Image.Pixels, RgbImage.Load(file).Pixels);
        }

        string json = Path.Combine(temp.Path, "analysis.json");
        (console, text) = CapturedConsole.Create();
        File.Delete(Path.Combine(outDir, ShapesCommand.GridFile)); // analyze the folder's samples only
        exit = await CliApp.RunAsync(["shapes", "analyze", outDir, "--out", json], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Contains("shape_iou", SnakeCaseJson.AssertKeys(File.ReadAllText(json)));
        using var analysis = JsonDocument.Parse(File.ReadAllText(json));
        var results = analysis.RootElement.EnumerateArray().ToArray();
        Assert.Equal(4, results.Length);
        for (int i = 0; i < 4; i++)
        {
            var scene = sampler.Describe(i).Scene;
            Assert.Equal(scene.Background.Name, results[i].GetProperty("background").GetString());
            Assert.Equal(scene.Objects.Select(o => o.Shape.Name).Order(), results[i].GetProperty("objects").EnumerateArray().Select(o => o.GetProperty("shape").GetString()!).Order());
        }
    }

    [Fact]
    public async Task PretrainKeepsTheSeedOfARecipeFileUnlessSeedIsTyped()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string recipe = Path.Combine(temp.Path, "recipe.json");
        File.WriteAllText(recipe, (AttnDreamBooth.Shapes.Pretraining.PretrainingRecipe.Default with { Seed = 77, WarmupSteps = 1 }).ToJson());
        foreach (var (extra, expected) in new (string[], long)[] { ([], 77), (["--seed", "5"], 5) })
        {
            string outDir = Path.Combine(temp.Path, $"run-{expected}");
            var (console, text) = CapturedConsole.Create();
            int exit = await CliApp.RunAsync(["shapes", "pretrain", "--tiny", "--recipe", recipe, "--steps", "1,1", "--out", outDir, .. extra], console);
            Assert.True(exit == 0, text.ToString());
            using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "model", "manifest.json")));
            Assert.Equal(expected, manifest.RootElement.GetProperty("seed").GetInt64());
        }
    }

    [Fact]
    public async Task PretrainFromAModelFolderKeepsTheVaePhaseOfARecipeFile()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        Assert.True(await CliApp.RunAsync(["shapes", "pretrain", "--tiny", "--steps", "1,1", "--out", temp.File("first")], console) == 0, text.ToString());
        string recipe = temp.File("recipe.json");
        File.WriteAllText(recipe, (AttnDreamBooth.Shapes.Pretraining.PretrainingRecipe.Default with { VaeSteps = 2, UNetSteps = 1, WarmupSteps = 1, VaeNovelAppearanceShare = 0.5 }).ToJson());
        (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "pretrain", "--tiny", "--recipe", recipe, "--init-from", Path.Combine(temp.File("first"), "model"), "--out", temp.File("second")], console);
        Assert.True(exit == 0, text.ToString());
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.File("second"), "model", "manifest.json")));
        Assert.Equal(2, manifest.RootElement.GetProperty("recipe").GetProperty("vae_steps").GetInt32());
        Assert.Equal(0.5, manifest.RootElement.GetProperty("recipe").GetProperty("vae_novel_appearance_share").GetDouble());
    }

    [Fact]
    public async Task QualityMeasuresTheVaesReconstructionsOfConceptPhotos()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string concept = Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "mint-ring.json");
        string model = Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "quality", "--model", model, "--concept-reconstruction", concept,
            "--out", temp.File("ceiling.json"), "--grid", temp.File("ceiling.png")], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Contains("mint-ring", text.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(temp.File("ceiling.json")));
        var entry = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal(5, entry.GetProperty("reconstructions").GetArrayLength());
        double photos = entry.GetProperty("photo_identity").GetDouble();
        Assert.True(photos >= 0.85, $"photos' identity {photos}");
        double reconstructions = entry.GetProperty("reconstruction_identity").GetDouble();
        Assert.InRange(reconstructions, 0, 1);
        // A row of five photo / reconstruction pairs, each 64 px at scale 2.
        var grid = AttnDreamBooth.Imaging.RgbImage.Load(temp.File("ceiling.png"));
        Assert.True(grid.Width >= 10 * 128 && grid.Height >= 128, $"{grid.Width}×{grid.Height}");

        (console, text) = CapturedConsole.Create();
        Assert.Equal(2, await CliApp.RunAsync(["shapes", "quality", "--model", model, "--concept-reconstruction", concept, "--reconstruction"], console));
        Assert.Contains("--concept-reconstruction", text.ToString());
    }

    [Fact]
    public async Task RenderingAConceptWritesItsPhotosAndAnalyzeScoresTheirIdentity()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string concept = Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "harlequin-star.json");
        string outDir = Path.Combine(temp.Path, "photos");
        var (console, text) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync(["shapes", "render", "--concept", concept, "--out", outDir], console));
        Assert.Equal(5, Directory.GetFiles(outDir, "*.png").Length);

        (console, text) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync(["shapes", "analyze", Path.Combine(outDir, "00000.png"), "--concept", concept], console));
        using var doc = JsonDocument.Parse(text.ToString());
        double score = doc.RootElement[0].GetProperty("identity").GetProperty("score").GetDouble();
        Assert.True(score >= 0.85, $"identity {score}");

        // --blur analyzes a blurred copy: the same photo scores lower, and an impossible sigma is refused.
        (console, text) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync(["shapes", "analyze", Path.Combine(outDir, "00000.png"), "--concept", concept, "--blur", "1.5"], console));
        using var blurred = JsonDocument.Parse(text.ToString());
        double blurredScore = blurred.RootElement[0].GetProperty("identity").GetProperty("score").GetDouble();
        Assert.True(blurredScore < score, $"identity {blurredScore} blurred, {score} sharp");
        (console, text) = CapturedConsole.Create();
        Assert.Equal(2, await CliApp.RunAsync(["shapes", "analyze", Path.Combine(outDir, "00000.png"), "--blur", "9"], console));
        Assert.Contains("--blur", text.ToString());
    }

    [Fact]
    public async Task AccuracyPrintsTheTableAndWritesTheReport()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string report = temp.File("acc.json");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "accuracy", "--count", "20", "--seed", "8", "--out", report], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Contains("background", text.ToString());
        Assert.Contains("image_size", SnakeCaseJson.AssertKeys(File.ReadAllText(report)));
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal(20, doc.RootElement.GetProperty("count").GetInt32());
        Assert.Equal(AnalyzerAccuracy.AttributeNames, doc.RootElement.GetProperty("attributes").EnumerateArray().Select(a => a.GetProperty("attribute").GetString()));
    }

    [Fact]
    public async Task DiagnoseWithAttributesPrintsTheRiseOfEveryAttribute()
    {
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "diagnose", "--model", AttnDreamBooth.Tests.Shapes.ShippedModel.ShippedModelFixture.ModelFolder,
            "--images", "4", "--attributes"], console);
        Assert.True(exit == 0, text.ToString());
        string output = text.ToString();
        Assert.Contains("text gain", output);
        Assert.Contains("error rise when one word", output);
        // A narrow console cuts the last column's long name ("background"), so only the short names are looked for.
        foreach (string attribute in AttnDreamBooth.Shapes.Pretraining.AttributeUse.Attributes.Where(a => a.Length <= 8))
            Assert.Contains(attribute, output);
        // Six timesteps, each with a signed rise per attribute.
        Assert.True(System.Text.RegularExpressions.Regex.Matches(output, @"[+-]\d+\.\d%").Count >= 6 * 6, output);
    }

    [Theory]
    [InlineData("render --size 4 --out {0}", "--size must be in [16, 1024]")]
    [InlineData("analyze {0}/missing.png", "does not exist")]
    [InlineData("render --world {0}/nope.json --out {0}", "does not exist")]
    [InlineData("render --concept {0}/bad.json --out {0}", "bad.json: not valid JSON")]
    public async Task BadArgumentsExitWithCode2AndAClearMessage(string args, string message)
    {
        using var temp = TestPaths.CreateTempDirectory();
        File.WriteAllText(temp.File("bad.json"), "{");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", .. string.Format(System.Globalization.CultureInfo.InvariantCulture, args, temp.Path).Split(' ')], console);
        Assert.Equal(2, exit);
        Assert.Contains(message, text.ToString());
    }
}
