using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>The <c>export</c> command and <c>generate</c> with imported concepts, run in-process on the tiny model.</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class ExportCommandTests(TrainedConcepts concepts)
{
    [Fact]
    public async Task ExportThenGenerateFromEachForm()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();

        int exit = await CliApp.RunAsync(["export", "--model", TestPaths.TinySd1, "--concept", concepts.Sd1, "--out", temp.File("pipeline")], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Contains("Trigger word: new_concept_v0", text.ToString());
        exit = await CliApp.RunAsync(["generate", "--model", temp.File("pipeline"), "--prompt", "a new_concept_v0 dog", "--out", temp.File("images-pipeline"), "--steps", "2"], console);
        Assert.True(exit == 0, text.ToString());

        exit = await CliApp.RunAsync(["export", "--model", TestPaths.TinySd1, "--concept", concepts.Sd1, "--out", temp.File("lora"), "--format", "lora", "--rank", "full"], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Contains("LoRA: ", text.ToString());
        Assert.True(File.Exists(Path.Combine(temp.File("lora"), "new_concept_v0-lora.safetensors")));

        // The embedding alone, the embedding + LoRA by file, and the LoRA export's folder as a whole.
        string embedding = Path.Combine(temp.File("lora"), "new_concept_v0.safetensors");
        exit = await CliApp.RunAsync(["generate", "--model", TestPaths.TinySd1, "--concept", embedding, "--category", "dog", "--prompt", "a {}",
            "--out", temp.File("images-embedding"), "--steps", "2", "--heatmap"], console);
        Assert.True(exit == 0, text.ToString());
        Assert.True(File.Exists(Path.Combine(temp.File("images-embedding"), "image-0-heatmap.png")));
        exit = await CliApp.RunAsync(["generate", "--model", TestPaths.TinySd1, "--concept", embedding, "--lora", Path.Combine(temp.File("lora"), "new_concept_v0-lora.safetensors"),
            "--prompt", "a {} dog", "--out", temp.File("images-lora"), "--steps", "2"], console);
        Assert.True(exit == 0, text.ToString());
        exit = await CliApp.RunAsync(["generate", "--model", TestPaths.TinySd1, "--concept", temp.File("lora"), "--prompt", "a {} dog", "--out", temp.File("images-folder"), "--steps", "2"], console);
        Assert.True(exit == 0, text.ToString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp.File("images-lora"), "image-0.png")), File.ReadAllBytes(Path.Combine(temp.File("images-folder"), "image-0.png")));
    }

    [Theory]
    [InlineData(2, "wrong-format", new[] { "--format", "ckpt" }, "single-file")]
    [InlineData(2, "zero-rank", new[] { "--format", "lora", "--rank", "0" }, "--rank must be a positive whole number or 'full'")]
    [InlineData(2, "bad-dtype", new[] { "--dtype", "fp8" }, "fp16")]
    [InlineData(2, "slash-trigger", new[] { "--format", "embedding", "--trigger", "a/b" }, "cannot be a file name")]
    public async Task BadArgumentsGiveAClearMessageAndExitCode(int expectedExit, string label, string[] extra, string message)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["export", "--model", TestPaths.TinySd1, "--concept", concepts.Sd1, "--out", temp.File(label), .. extra], console);
        Assert.True(exit == expectedExit, text.ToString());
        Assert.Contains(message, text.ToString());
        Assert.False(Directory.Exists(temp.File(label)));
    }

    [Fact]
    public async Task ANonEmptyOutputFolderNeedsForceAndAMissingConceptIsNamed()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        Directory.CreateDirectory(temp.File("out"));
        File.WriteAllText(Path.Combine(temp.File("out"), "keep.txt"), "x");
        string[] args = ["export", "--model", TestPaths.TinySd1, "--concept", concepts.Sd1, "--out", temp.File("out"), "--format", "embedding"];
        Assert.Equal(2, await CliApp.RunAsync(args, console));
        Assert.Contains("not empty", text.ToString());
        Assert.True(File.Exists(Path.Combine(temp.File("out"), "keep.txt")));
        Assert.Equal(0, await CliApp.RunAsync([.. args, "--force"], console));
        Assert.False(File.Exists(Path.Combine(temp.File("out"), "keep.txt")));

        Assert.Equal(2, await CliApp.RunAsync(["export", "--model", TestPaths.TinySd1, "--concept", temp.File("nowhere"), "--out", temp.File("x")], console));
        Assert.Contains("nowhere", text.ToString());
        Assert.Equal(2, await CliApp.RunAsync(["generate", "--model", TestPaths.TinySd1, "--lora", temp.File("x.safetensors"), "--prompt", "a dog", "--out", temp.File("y")], console));
        Assert.Contains("--lora is merged into an imported concept", text.ToString());
    }
}
