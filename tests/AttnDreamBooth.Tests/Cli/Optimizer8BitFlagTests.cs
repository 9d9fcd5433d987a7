using AttnDreamBooth.Cli;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Cli;

/// <summary><c>train --optimizer-8bit</c> trains with 8-bit AdamW moments (visible in the checkpoint).</summary>
public sealed class Optimizer8BitFlagTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheFlagSelectsTheStateFormatOfTheCheckpoint(bool eightBit)
    {
        using var temp = TestPaths.CreateTempDirectory();
        string output = temp.File("run");
        var (console, text) = CapturedConsole.Create();
        string[] args = ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", output,
            "--steps", "0,0,1", "--batch-size", "1", "--seed", "3"];
        int exit = await CliApp.RunAsync(eightBit ? [.. args, "--optimizer-8bit"] : args, console);
        Assert.True(exit == 0, text.ToString());
        var (_, tensors) = TrainingCheckpoint.Read(TrainingCheckpoint.Latest(Path.Combine(output, "checkpoints"))!);
        // The tiny U-Net's 63 tensors of >= 4,096 elements get 8-bit moments; the smaller ones stay float32.
        int codes = tensors.Keys.Count(k => k.StartsWith("optim.", StringComparison.Ordinal) && k.EndsWith(".exp_avg.codes", StringComparison.Ordinal));
        Assert.Equal(eightBit ? 63 : 0, codes);
        Assert.Equal(eightBit ? 304 - 63 : 304, tensors.Keys.Count(k => k.StartsWith("optim.", StringComparison.Ordinal) && k.EndsWith(".exp_avg", StringComparison.Ordinal)));
    }
}
