using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary><c>train --release-text-encoder</c> reaches the trainer: with <c>--verbose</c> its release is logged.</summary>
public sealed class ReleaseTextEncoderFlagTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheFlagReleasesTheTextEncoderForStage2(bool release)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        string[] args = ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", temp.File("run"),
            "--steps", "0,1,0", "--batch-size", "1", "--seed", "3", "--verbose"];
        int exit = await CliApp.RunAsync(release ? [.. args, "--release-text-encoder"] : args, console);
        Assert.True(exit == 0, text.ToString());
        Assert.Equal(release, text.ToString().Contains("Released the text encoder's weights", StringComparison.Ordinal));
    }
}
