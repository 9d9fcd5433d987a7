using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>What a new user meets: usage errors as one line naming the argument and the fix (exit 2, checked before the
/// model loads), the training display (header, step x/N, ETA, 100 % at the end, summary, where a resume continued), and
/// generate from a run folder, a single-file model and in bfloat16.</summary>
public sealed class FirstHourCliTests
{
    private static string SingleFile => Path.Combine(TestPaths.FixturesRoot, "tiny-sd1", "single-file", "model.safetensors");

    public static TheoryData<string, string[], string> UsageErrors => new()
    {
        { "single file without configs", ["--model", SingleFile], "--model-config" },
        { "one photo instead of a folder", ["--images", Path.Combine(TinyPipeline.DogPhotos, "00.jpg")], "give the folder that holds the 3–5 photos" },
        { "gpu", ["--device", "gpu"], "--device 'gpu' is not a device; use cpu, cuda or cuda:N" },
        { "missing category", ["--category", null!], "Option '--category' is required" },
        { "unknown preset", ["--preset", "slow"], "--preset 'slow' is not a preset; use paper" },
        { "bad steps", ["--steps", "1,x,1"], "--steps expects three non-negative integers" },
        { "missing model", ["--model", "/nonexistent/model"], "--model '/nonexistent/model' does not exist; give a diffusers model folder" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task TrainUsageErrorsAreOneLineNamingTheArgumentAndExitTwo(string name, string[] change, string expected)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var args = new List<string> { "train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", temp.File("run") };
        int at = args.IndexOf(change[0]);
        if (at >= 0 && change[1] is null) args.RemoveRange(at, 2);
        else if (at >= 0) args[at + 1] = change[1];
        else args.AddRange(change);
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync([.. args], console);
        string output = text.ToString();
        Assert.True(exit == 2, $"{name}: {output}");
        Assert.Contains(expected, output);
        Assert.DoesNotContain("(Parameter", output);
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("Usage:", output);
        Assert.Equal(2, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.False(Directory.Exists(temp.File("run")), name);
    }

    [Fact]
    public async Task ThePresetNameIgnoresCase()
    {
        using var temp = TestPaths.CreateTempDirectory();
        // An empty model folder fails at the load, after the header has shown the plan the preset chose.
        string model = temp.File("model");
        Directory.CreateDirectory(model);
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["train", "--model", model, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", temp.File("run"), "--preset", "Fast"], console);
        string output = text.ToString();
        Assert.Equal(2, exit);
        Assert.Contains("run     device cpu, preset fast, 360 steps: 60 stage 1 Embedding + 100 stage 2 CrossAttention + 200 stage 3 UNet", output);
        Assert.DoesNotContain("Usage:", output);
    }

    [Fact]
    public async Task PhotosAreCheckedBeforeTheModelIsLoaded()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string photos = temp.File("photos");
        Directory.CreateDirectory(photos);
        File.WriteAllBytes(Path.Combine(photos, "01.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46]);
        // A model folder that would fail to load: the photo error comes first, so nothing was loaded.
        string model = temp.File("model");
        Directory.CreateDirectory(model);
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["train", "--model", model, "--images", photos, "--category", "dog", "--out", temp.File("run")], console);
        Assert.Equal(2, exit);
        Assert.Contains("--images: 1 of the photos", text.ToString());
        Assert.Contains("01.jpg", text.ToString());
        Assert.DoesNotContain("model_index", text.ToString());
    }

    [Fact]
    public async Task TrainShowsHeaderStepsEtaAndSummaryAndAResumeSaysWhereItContinued()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string run = temp.File("run");
        string[] args = ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", run,
            "--steps", "3,1,1", "--batch-size", "1", "--checkpoint-every", "1", "--seed", "3"];
        var (console, text) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync(args, console));
        var lines = text.ToString().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

        Assert.Contains(lines, l => l.StartsWith("model   ", StringComparison.Ordinal) && l.EndsWith("pipeline", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("photos  5 in ", StringComparison.Ordinal));
        Assert.Contains("run     device cpu, preset paper, 5 steps: 3 stage 1 Embedding + 1 stage 2 CrossAttention + 1 stage 3 UNet", lines);
        var stageLines = lines.Where(l => l.StartsWith("stage ", StringComparison.Ordinal)).ToArray();
        // Redirected: every step of these short stages, never a 0 % line up front, and each stage ends at 100 %.
        Assert.Equal(["stage 1 Embedding      step 1/3", "stage 1 Embedding      step 2/3", "stage 1 Embedding      step 3/3",
            "stage 2 CrossAttention step 1/1", "stage 3 UNet           step 1/1"], stageLines.Select(l => l[..31]));
        Assert.DoesNotContain(stageLines, l => l.Contains("  0 %", StringComparison.Ordinal));
        Assert.Contains("100 %  total 3/5", stageLines[2]);
        Assert.Contains("100 %  total 5/5  ETA 0:00:00", stageLines[4]);
        Assert.All(stageLines, l => Assert.Matches(@"loss \d+\.\d{4} +\d+\.\d\d s/step", l));
        Assert.Single(stageLines.Select(l => l.IndexOf(" loss ", StringComparison.Ordinal)).Distinct());
        Assert.Contains(lines, l => l.StartsWith("trained 5 steps in ", StringComparison.Ordinal) && l.Contains("stage 3 UNet", StringComparison.Ordinal));
        Assert.Contains($"Saved the concept to {Path.Combine(run, "concept")} and the loss curve to {Path.Combine(run, "loss.png")}.", lines);

        // Resume from the checkpoint after stage 2: it says so, and trains only stage 3.
        string checkpoints = Path.Combine(run, "checkpoints");
        var newest = Directory.GetDirectories(checkpoints).Order(StringComparer.Ordinal).Last();
        Directory.Delete(newest, recursive: true);
        string resumedFrom = Path.GetFileName(Directory.GetDirectories(checkpoints).Order(StringComparer.Ordinal).Last());
        var (console2, text2) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync([.. args, "--resume", "--force"], console2));
        string resumed = text2.ToString();
        Assert.Contains($"resumed from {resumedFrom} at stage 2 CrossAttention step 1/1 (step 4/5 overall", resumed);
        Assert.DoesNotContain("stage 1 Embedding      step", resumed);
        Assert.Contains("stage 3 UNet           step 1/1", resumed);
        Assert.Contains("trained 1 steps in ", resumed);
        Assert.Contains("(resumed at step 5)", resumed);
    }

    [Fact]
    public void TheLossPlotLabelsEveryStageBoundary()
    {
        var plan = AttnDreamBooth.Personalization.StagePlan.Paper.WithSteps(3, 0, 2).Skip(AttnDreamBooth.Personalization.TrainingStage.CrossAttention);
        var model = LossPlot.Build([1.0, 0.9, 0.8, 0.7, 0.6], CliApp.StageStarts(plan));
        var lines = model.Annotations.OfType<OxyPlot.Annotations.LineAnnotation>().ToArray();
        Assert.Equal(["stage 1 Embedding", "stage 3 UNet"], lines.Select(a => a.Text));
        Assert.Equal([0.5, 3.5], lines.Select(a => a.X));
    }

    [Fact]
    public async Task GenerateTakesTheRunFolderASingleFileModelAndBfloat16AndSaysWhenNoHeatmapWasPossible()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string run = temp.File("run");
        var (console, text) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync(["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", run,
            "--steps", "1,0,1", "--batch-size", "1"], console));

        // The run folder stands for its concept; the prompt lacks the token: images, and a note instead of a heatmap.
        int exit = await CliApp.RunAsync(["generate", "--concept", run, "--prompt", "a dog in the snow", "--heatmap", "--out", temp.File("a"), "--steps", "2", "--dtype", "bf16"], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Equal(["image-0.png"], Directory.GetFiles(temp.File("a")).Select(Path.GetFileName));
        Assert.Contains("note: no heatmap was possible: the prompt does not contain the concept's token 'new_concept_v0'", text.ToString());

        // A single-file base model whose name differs from the recorded one: refused before loading, unless forced.
        string[] single = ["generate", "--model", SingleFile, "--model-config", TestPaths.TinySd1, "--concept", run, "--prompt", "a {}", "--out", temp.File("b"), "--steps", "2"];
        var (console2, text2) = CapturedConsole.Create();
        Assert.Equal(2, await CliApp.RunAsync(single, console2));
        Assert.Contains("was trained on the base model 'pipeline', but --model is 'model.safetensors'", text2.ToString());
        exit = await CliApp.RunAsync([.. single, "--force", "--heatmap"], console2);
        Assert.True(exit == 0, text2.ToString());
        Assert.Equal(["image-0-heatmap.png", "image-0.png"], Directory.GetFiles(temp.File("b")).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var (console3, text3) = CapturedConsole.Create();
        Assert.Equal(2, await CliApp.RunAsync(["generate", "--model", TestPaths.TinySd1, "--prompt", "a dog", "--out", temp.File("c"), "--dtype", "fp16"], console3));
        Assert.Contains("use --dtype bf16 on the CPU", text3.ToString());
    }
}
