using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary><c>train --channels-last</c> trains with the U-Net's convolution weights laid out channels-last (the trainer
/// logs it) and refuses <c>--optimizer-8bit</c> before loading anything.</summary>
public sealed class ChannelsLastFlagTests
{
    private static string[] Train(string output) =>
        ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", output,
            "--steps", "0,0,1", "--batch-size", "1", "--seed", "3", "--verbose"];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheFlagLaysTheConvolutionsOutChannelsLastForTraining(bool flag)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        string[] args = Train(temp.File("run"));
        int exit = await CliApp.RunAsync(flag ? [.. args, "--channels-last"] : args, console);
        Assert.True(exit == 0, text.ToString());
        Assert.Equal(flag, text.ToString().Contains("convolution weights out channels-last", StringComparison.Ordinal));
        Assert.True(Directory.Exists(Path.Combine(temp.File("run"), "concept")), "the trained concept is saved");
    }

    [Fact]
    public async Task EightBitStatesAreRefusedWithAClearMessage()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync([.. Train(temp.File("run")), "--channels-last", "--optimizer-8bit"], console);
        Assert.Equal(2, exit);
        Assert.Contains("--channels-last cannot be combined with --optimizer-8bit", text.ToString().Replace("\n", "", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(temp.File("run"), "concept")));
    }
}
