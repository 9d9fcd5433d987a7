using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary><c>generate</c>'s <c>--sampler</c>, <c>--negative-prompt</c>, <c>--width</c>, <c>--height</c> and its progress lines,
/// on the concept trained once for the evaluation and CLI tests.</summary>
[Collection(TinyConceptCollection.Name)]
public sealed class GenerateSamplerCommandTests(TinyConcept tiny)
{
    [Fact]
    public async Task GenerateTakesAnySamplerASizeAndANegativePromptAndShowsProgress()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string run = temp.Path;
        string concept = tiny.ConceptFolder;
        var (console, text) = CapturedConsole.Create();
        string images = Path.Combine(run, "images");
        int generated = await CliApp.RunAsync(
            ["generate", "--model", TestPaths.TinySd1, "--concept", concept, "--prompt", "a {} in the snow",
             "--out", images, "--sampler", "euler-a", "--negative-prompt", "blurry", "--width", "64", "--height", "48", "--steps", "3", "--seed", "9"], console);
        string output = text.ToString();
        Assert.True(generated == 0, output);
        Assert.Contains("euler-a: step 3/3 (100", output.Replace("generating 1 image(s) with ", ""), StringComparison.Ordinal);
        var png = File.ReadAllBytes(Path.Combine(images, "image-9.png"));
        // PNG IHDR: width and height are big-endian at bytes 16 and 20.
        Assert.Equal(64, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(48, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));

        // The former name of DPM-Solver++ still works, and the negative prompt changes the image.
        string other = Path.Combine(run, "other");
        Assert.Equal(0, await CliApp.RunAsync(
            ["generate", "--model", TestPaths.TinySd1, "--concept", concept, "--prompt", "a {} in the snow",
             "--out", other, "--sampler", "euler-a", "--width", "64", "--height", "48", "--steps", "3", "--seed", "9"], console));
        Assert.NotEqual(png, File.ReadAllBytes(Path.Combine(other, "image-9.png")));
        Assert.Equal(0, await CliApp.RunAsync(
            ["generate", "--model", TestPaths.TinySd1, "--concept", concept, "--prompt", "a {}",
             "--out", other, "--sampler", "dpm", "--width", "64", "--height", "48", "--steps", "1", "--seed", "1"], console));
        Assert.Contains("with dpm++: step 1/1", text.ToString(), StringComparison.Ordinal);
    }

    // The library logs what it loads and how it generates; --verbose shows those lines, without it they are dropped.
    [Fact]
    public async Task VerboseShowsTheLibrarysLogLines()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string[] Args(string folder) =>
            ["generate", "--model", TestPaths.TinySd1, "--concept", tiny.ConceptFolder, "--prompt", "a {} in the snow", "--out", temp.File(folder), "--steps", "1"];
        var (quiet, quietText) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync(Args("quiet"), quiet));
        var (verbose, verboseText) = CapturedConsole.Create();
        Assert.Equal(0, await CliApp.RunAsync([.. Args("verbose"), "--verbose"], verbose));
        string logged = verboseText.ToString();
        Assert.Contains("[info] ", logged, StringComparison.Ordinal);
        Assert.Contains("Loaded unet from", logged, StringComparison.Ordinal);
        Assert.Contains("Generating 1 image(s) for", logged, StringComparison.Ordinal);
        Assert.DoesNotContain("[info] ", quietText.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--sampler", "euler-b", "Unknown sampler 'euler-b'")]
    [InlineData("--sampler", "pndm-karras", "PNDMScheduler has no Karras sigmas")]
    [InlineData("--width", "3", "Width")]
    public async Task BadGenerateOptionsExitTwoBeforeTheModelIsLoaded(string flag, string value, string message)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        // The model path does not exist: the option error must come first.
        int exit = await CliApp.RunAsync(
            ["generate", "--model", temp.File("missing-model"), "--concept", temp.Path, "--prompt", "a {}", "--out", temp.File("img"), flag, value], console);
        string output = text.ToString();
        Assert.Equal(2, exit);
        Assert.Contains(message, output, StringComparison.Ordinal);
        Assert.DoesNotContain("missing-model", output, StringComparison.Ordinal);
    }
}
