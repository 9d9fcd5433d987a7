using System.Text.Json;
using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary><c>evaluate</c> and <c>export</c> take what <c>train</c> and <c>generate</c> take: a run folder for
/// <c>--concept</c>, a single-file <c>--model</c> with <c>--model-config</c>, and the same one-line usage errors (exit 2)
/// for a photo given as <c>--images</c> or a single file without its configs.</summary>
[Collection(TinyConceptCollection.Name)]
public sealed class EvaluateExportInputTests(TinyConcept tiny)
{
    private static string SingleFile => Path.Combine(TestPaths.FixturesRoot, "tiny-sd1", "single-file", "model.safetensors");

    [Fact]
    public async Task EvaluateTakesTheRunFolderAndASingleFileModel()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string run = temp.File("run");
        CopyFolder(tiny.ConceptFolder, Path.Combine(run, "concept"));
        string prompts = temp.File("prompts.txt");
        File.WriteAllText(prompts, "a {} on the beach\n");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["evaluate", "--model", SingleFile, "--model-config", TestPaths.TinySd1, "--concept", run, "--clip", TinyConcept.ClipFolder,
             "--images", TinyConcept.Photos, "--prompts", prompts, "--images-per-prompt", "1", "--steps", "1", "--out", temp.File("eval")], console);
        Assert.True(exit == 0, text.ToString());
        // What the generation will cost is said before it starts; the tiny model gets no real-size warning.
        Assert.Contains("Estimate: about ", text.ToString());
        Assert.Contains("on cpu to generate 1 × 1 images at 1 steps", text.ToString());
        Assert.DoesNotContain("warning", text.ToString());
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.File("eval"), EvaluationReport.JsonFile)));
        Assert.Equal(Path.Combine(run, "concept"), report.RootElement.GetProperty("inputs").GetProperty("concept").GetString());
    }

    [Fact]
    public async Task ExportTakesTheRunFolderAndASingleFileModel()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string run = temp.File("run");
        CopyFolder(tiny.ConceptFolder, Path.Combine(run, "concept"));
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["export", "--model", SingleFile, "--model-config", TestPaths.TinySd1, "--concept", run, "--out", temp.File("out"), "--format", "embedding"], console);
        Assert.True(exit == 0, text.ToString());
        Assert.True(File.Exists(Path.Combine(temp.File("out"), TinyConcept.Token + ".safetensors")), text.ToString());
    }

    public static TheoryData<string, string, string[], string> UsageErrors => new()
    {
        { "evaluate", "--images", [Path.Combine(TinyConcept.Photos, "00.jpg")], "is a file; give the folder that holds the 3–5 photos" },
        { "evaluate", "--images", ["/nonexistent/photos"], "--images '/nonexistent/photos' does not exist; give the folder" },
        { "evaluate", "--model", [SingleFile], "is a single-file checkpoint; also give --model-config" },
        { "evaluate", "--model", ["/nonexistent/model"], "--model '/nonexistent/model' does not exist; give a diffusers model folder" },
        { "export", "--model", [SingleFile], "is a single-file checkpoint; also give --model-config" },
        { "export", "--model", ["/nonexistent/model"], "--model '/nonexistent/model' does not exist; give a diffusers model folder" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task UsageErrorsAreOneLineNamingTheArgumentAndExitTwo(string command, string flag, string[] value, string expected)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var args = command == "evaluate"
            ? new List<string> { "evaluate", "--model", TestPaths.TinySd1, "--concept", tiny.ConceptFolder, "--clip", TinyConcept.ClipFolder, "--images", TinyConcept.Photos, "--out", temp.File("out") }
            : ["export", "--model", TestPaths.TinySd1, "--concept", tiny.ConceptFolder, "--out", temp.File("out")];
        args[args.IndexOf(flag) + 1] = value[0];
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync([.. args], console);
        string output = text.ToString();
        Assert.True(exit == 2, output);
        Assert.Contains(expected, output);
        Assert.DoesNotContain("(Parameter", output);
        Assert.Equal(2, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.False(Directory.Exists(temp.File("out")));
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (string folder in Directory.GetDirectories(from)) CopyFolder(folder, Path.Combine(to, Path.GetFileName(folder)));
    }
}
