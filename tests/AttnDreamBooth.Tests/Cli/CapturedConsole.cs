using Spectre.Console;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>A Spectre console that writes plain, wide, non-interactive text to a <see cref="StringWriter"/>, so the CLI
/// can be run in-process and its output asserted on.</summary>
internal static class CapturedConsole
{
    public static (IAnsiConsole Console, StringWriter Output) Create()
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 200;
        return (console, writer);
    }
}
