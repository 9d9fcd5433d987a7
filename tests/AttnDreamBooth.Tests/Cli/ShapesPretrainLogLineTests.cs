using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>
/// <c>shapes pretrain</c> prints a plain line every 10 steps. Written to standard error while the live progress bars
/// were drawn on the same terminal, each line landed inside the bars' region and was smeared across the screen by the
/// next redraw; on a terminal they now go through the console (printed above the bars), and to standard error whenever
/// that is a file or pipe (the log of a background run) or there are no live bars.
/// </summary>
public sealed class ShapesPretrainLogLineTests
{
    private const string Line = "[12:00:00] UNet step 10/5000 loss 0.50000";

    [Fact]
    public void OnAnInteractiveTerminalTheLineGoesThroughTheConsole()
    {
        var (console, output) = CapturedConsole.Create(interactive: true);
        ShapesPretrainCommand.LogLineSink(console, errorRedirected: false)(Line);
        Assert.Contains(Line, output.ToString());
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public void WithStandardErrorRedirectedOrWithoutLiveBarsTheLineStaysOffTheConsole(bool interactive, bool errorRedirected)
    {
        var (console, output) = CapturedConsole.Create(interactive);
        ShapesPretrainCommand.LogLineSink(console, errorRedirected)(Line);
        Assert.DoesNotContain(Line, output.ToString());
    }
}
