using System.Text.Json;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Evaluation;
using SkiaSharp;
using AttnDreamBooth.Tests.IO;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>The <c>evaluate</c> command run in-process on the tiny model, the tiny CLIP model and a trained concept.</summary>
[Collection(TinyConceptCollection.Name)]
public sealed class EvaluateCommandTests(TinyConcept concept)
{
    private string[] Arguments(string prompts, string output) =>
    [
        "evaluate", "--model", TestPaths.TinySd1, "--concept", concept.ConceptFolder, "--clip", TinyConcept.ClipFolder,
        "--images", TinyConcept.Photos, "--prompts", prompts, "--images-per-prompt", "2", "--steps", "3", "--seed", "7", "--out", output,
    ];

    [Fact]
    public async Task EvaluatePrintsTheScoresAndWritesTheReportAndTheGrid()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string prompts = temp.File("prompts.txt");
        File.WriteAllText(prompts, "# the test's prompts\na {} on the beach\n\na photo of {}\n");
        string output = Path.Combine(temp.Path, "eval");
        var (console, text) = CapturedConsole.Create();

        int exit = await CliApp.RunAsync(Arguments(prompts, output), console);

        Assert.True(exit == 0, text.ToString());
        Assert.Equal([EvaluationReport.GridFile, EvaluationReport.JsonFile], Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        string reportText = File.ReadAllText(Path.Combine(output, EvaluationReport.JsonFile));
        Assert.Contains("images_per_prompt", SnakeCaseJson.AssertKeys(reportText));
        using var json = JsonDocument.Parse(reportText);
        var root = json.RootElement;
        Assert.Equal(TinyConcept.Token, root.GetProperty("token").GetString());
        var perPrompt = root.GetProperty("per_prompt").EnumerateArray().ToArray();
        Assert.Equal(["a sks dog on the beach", "a photo of sks dog"], perPrompt.Select(p => p.GetProperty("prompt").GetString()));
        Assert.All(perPrompt, p => Assert.Equal([7L, 8L], p.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("seed").GetInt64())));
        Assert.Equal(5, root.GetProperty("inputs").GetProperty("source_images").GetInt32());

        // The command's numbers are the library's for the same protocol.
        var expected = await new ConceptEvaluator(concept.Clip, ClipImageProcessor.FromFolder(TinyConcept.ClipFolder)).EvaluateAsync(concept.Pipeline, concept.Sources,
            new ConceptEvaluationOptions { Protocol = EvaluationProtocol.WithPrompts(["a {} on the beach", "a photo of {}"]) with { ImagesPerPrompt = 2, InferenceSteps = 3, Seed = 7 } });
        Assert.Equal(expected.Identity, root.GetProperty("identity").GetDouble());
        Assert.Equal(expected.Text, root.GetProperty("text").GetDouble());
        Assert.Equal(expected.PerPrompt[1].ImageText[1], perPrompt[1].GetProperty("images")[1].GetProperty("text").GetDouble());

        using var grid = SKBitmap.Decode(Path.Combine(output, EvaluationReport.GridFile));
        Assert.NotNull(grid);
        Assert.True(grid.Width >= 2 * 200 && grid.Height >= 2 * 200, $"{grid.Width}x{grid.Height}");

        string printed = text.ToString();
        Assert.Contains("a photo of sks dog", printed, StringComparison.Ordinal);
        Assert.Contains("overall", printed, StringComparison.Ordinal);
        Assert.Contains(expected.Identity.ToString("F4", System.Globalization.CultureInfo.InvariantCulture), printed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadPromptFilesAreReportedWithoutWritingAnything()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string prompts = temp.File("prompts.txt");
        File.WriteAllText(prompts, "a dog on the beach\n");
        string output = Path.Combine(temp.Path, "eval");
        var (console, text) = CapturedConsole.Create();

        int exit = await CliApp.RunAsync(Arguments(prompts, output), console);

        Assert.Equal(2, exit);
        Assert.Contains("placeholder", text.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
    }
}
