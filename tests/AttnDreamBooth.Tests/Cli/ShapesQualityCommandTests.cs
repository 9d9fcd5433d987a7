using System.Text.Json;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Shapes.Pretraining;

namespace AttnDreamBooth.Tests.Cli;

/// <summary><c>shapes quality --grid</c> run in-process on the shipped Shapes model.</summary>
public sealed class ShapesQualityCommandTests
{
    private static string ShippedModel => Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd");

    [Fact]
    public async Task GridWritesAPictureOfTheFirstPromptsNextToTheTable()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string grid = temp.File("q.png"), json = temp.File("q.json");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "quality", "--model", ShippedModel, "--prompts", "3", "--seeds", "2", "--steps", "3",
            "--grid", grid, "--grid-prompts", "2", "--out", json], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Contains($"wrote {grid}", text.ToString());
        var picture = RgbImage.Load(grid);
        var layout = QualityGridLayout.For(rows: 2, columns: 2, 64, 64);
        Assert.Equal((layout.Width, layout.Height), (picture.Width, picture.Height));
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(6, report.RootElement.GetProperty("samples").GetArrayLength());
        // Without --guidance the shipped model's chosen scale is used, not the library's 7.5.
        Assert.Equal(ShapesModelQuality.DefaultGuidanceScale, report.RootElement.GetProperty("options").GetProperty("guidance_scale").GetDouble());
        Assert.Equal("only", report.RootElement.GetProperty("combinations").GetString(), ignoreCase: true);
        Assert.Equal(["q.json", "q.png"], Directory.GetFiles(temp.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task SeenCombinationsAndTheGuidanceScaleReachTheReport()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string json = temp.File("seen.json");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "quality", "--model", ShippedModel, "--prompts", "2", "--seeds", "1", "--steps", "2",
            "--combinations", "seen", "--guidance", "3.5", "--out", json], console);
        Assert.True(exit == 0, text.ToString());
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(3.5, report.RootElement.GetProperty("options").GetProperty("guidance_scale").GetDouble());
        Assert.Equal("exclude", report.RootElement.GetProperty("combinations").GetString(), ignoreCase: true);
        Assert.Contains("2 images of seen combinations; 2 steps, guidance 3.5", text.ToString());
    }

    // A missing model folder would fail the run too, so exit 2 naming the option shows the option is checked first.
    [Theory]
    [InlineData("--grid-prompts", "--prompts", "3", "--grid", "g.png", "--grid-prompts", "4")]
    [InlineData("--grid-prompts", "--prompts", "3", "--grid", "g.png", "--grid-prompts", "0")]
    [InlineData("give --grid", "--prompts", "3", "--grid-prompts", "2")]
    [InlineData("--grid 'g.jpg'", "--prompts", "3", "--grid", "g.jpg")]
    [InlineData("--guidance", "--guidance", "-1")]
    [InlineData("--guidance", "--guidance", "NaN")]
    [InlineData("--combinations seen", "--reconstruction", "--combinations", "seen")]
    [InlineData("--combinations", "--combinations", "unseen")]
    public async Task BadGridArgumentsExitWithTheOptionNamed(string expected, params string[] arguments)
    {
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "quality", "--model", "/nonexistent/model", .. arguments], console);
        Assert.Equal(2, exit);
        Assert.Contains(expected, text.ToString());
        Assert.DoesNotContain("nonexistent", text.ToString());
    }
}
