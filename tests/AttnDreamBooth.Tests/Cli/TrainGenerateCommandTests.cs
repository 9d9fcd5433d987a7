using System.Text.Json;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>The <c>train</c> and <c>generate</c> commands run in-process on the tiny model.</summary>
public sealed class TrainGenerateCommandTests
{
    [Fact]
    public async Task TrainThenGenerateWritesTheConceptTheLossPlotImagesAndHeatmaps()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string output = temp.File("run");
        var (console, text) = CapturedConsole.Create();
        int trained = await CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", output,
             "--steps", "1,1,1", "--batch-size", "1", "--seed", "3"], console);
        Assert.True(trained == 0, text.ToString());
        Assert.True(File.Exists(Path.Combine(output, "concept", PersonalizedModel.MetadataFile)));
        Assert.True(new FileInfo(Path.Combine(output, "loss.png")).Length > 0);
        Assert.NotEmpty(Directory.GetDirectories(Path.Combine(output, "checkpoints"), "checkpoint-*"));

        int generated = await CliApp.RunAsync(
            ["generate", "--model", TestPaths.TinySd1, "--concept", Path.Combine(output, "concept"), "--prompt", "a {} on the beach",
             "--out", Path.Combine(output, "images"), "--heatmap", "--count", "2", "--steps", "2", "--seed", "5"], console);
        Assert.True(generated == 0, text.ToString());
        Assert.Equal(["image-5-heatmap.png", "image-5.png", "image-6-heatmap.png", "image-6.png"],
            Directory.GetFiles(Path.Combine(output, "images")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task TrainWithLoraRankSavesEmbeddingPlusLoraAndGenerateFindsTheBaseModel()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string output = temp.File("run");
        var (console, text) = CapturedConsole.Create();
        int trained = await CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", output,
             "--steps", "1,1,1", "--batch-size", "1", "--seed", "3", "--lora-rank", "2", "--lora-alpha", "1", "--lora-modules", "all"], console);
        Assert.True(trained == 0, text.ToString());
        string concept = Path.Combine(output, "concept");
        Assert.True(File.Exists(Path.Combine(concept, PersonalizedModel.LoraWeightsFile)), text.ToString());
        Assert.False(Directory.Exists(Path.Combine(concept, "unet")));
        using var metadata = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(concept, PersonalizedModel.MetadataFile)));
        var plan = StagePlan.FromJson(metadata.RootElement.GetProperty("plan").GetRawText());
        Assert.Equal(new AttnDreamBooth.Models.Lora.LoraOptions(Rank: 2, Alpha: 1), plan.Stage3.Lora);
        Assert.Equal(AttnDreamBooth.Models.Lora.LoraUNetModules.All, plan.Stage3.LoraModules);
        Assert.Equal(CliApp.DefaultLoraLearningRate, plan.Stage2.LearningRate);

        // No --model: the concept records its base model.
        int generated = await CliApp.RunAsync(
            ["generate", "--concept", concept, "--prompt", "a {} on the beach", "--out", Path.Combine(output, "images"), "--steps", "2", "--seed", "5"], console);
        Assert.True(generated == 0, text.ToString());
        Assert.True(File.Exists(Path.Combine(output, "images", "image-5.png")));

        int misused = await CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", temp.File("other"), "--lora-alpha", "4"], console);
        Assert.Equal(2, misused);
        Assert.Contains("--lora-rank", text.ToString());
    }

    [Fact]
    public async Task BadArgumentsGiveAClearErrorAndExitCode()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", temp.File("run"), "--steps", "1,x,1"], console);
        Assert.Equal(2, exit);
        Assert.Contains("--steps", text.ToString());

        exit = await CliApp.RunAsync(
            ["generate", "--model", temp.File("missing"), "--concept", temp.Path, "--prompt", "a {}", "--out", temp.File("img")], console);
        Assert.Equal(2, exit);
        Assert.Contains("missing", text.ToString());
    }

    [Fact]
    public async Task ABrokenPhotoExitsWithCodeTwoAndNamesTheFile()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string photos = temp.File("photos");
        Directory.CreateDirectory(photos);
        File.Copy(Directory.GetFiles(TinyPipeline.DogPhotos, "*.jpg").Order(StringComparer.Ordinal).First(), Path.Combine(photos, "00.jpg"));
        File.WriteAllBytes(Path.Combine(photos, "01.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46]);
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", photos, "--category", "dog", "--out", temp.File("run"), "--steps", "1,0,0", "--batch-size", "1"], console);
        Assert.True(exit == 2, text.ToString());
        Assert.Contains("error: ", text.ToString());
        Assert.Contains("01.jpg", text.ToString());
        Assert.DoesNotContain("   at ", text.ToString());
    }
}
