using Spectre.Console;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>A Spectre console that writes plain, wide text (non-interactive unless asked) to a <see cref="StringWriter"/>, so the CLI
/// can be run in-process and its output asserted on.</summary>
internal static class CapturedConsole
{
    /// <param name="interactive">Report the console as interactive (a terminal, where live displays are drawn).</param>
    public static (IAnsiConsole Console, StringWriter Output) Create(bool interactive = false)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Yes : InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 200;
        return (console, writer);
    }
}
