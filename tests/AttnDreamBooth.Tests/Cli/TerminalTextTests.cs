using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>Control characters in paths and names never reach the terminal raw.</summary>
public sealed class TerminalTextTests
{
    private const string Hostile = "evil\u001B]0;pwned\u0007\u001B[31mred\u009B2J\u007F\u202Etxt.png";

    [Fact]
    public void EveryControlCharacterBecomesAVisibleEscape()
    {
        string safe = TerminalText.Safe(Hostile);
        Assert.Equal("evil\\x1B]0;pwned\\x07\\x1B[31mred\\x9B2J\\x7F\\u202Etxt.png", safe);
        Assert.Equal("plain/path/ü.png", TerminalText.Safe("plain/path/ü.png"));
        Assert.Equal("a\\x0Ab", TerminalText.Safe("a\nb"));
        Assert.Equal("a\nb\\x0D", TerminalText.Safe("a\nb\r", keepNewlines: true));
        Assert.Equal("", TerminalText.Safe(null));
    }

    [Fact]
    public async Task TheCliNeverEchoesEscapesFromAFileName()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string concept = temp.File(Hostile);
        Directory.CreateDirectory(concept);
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["generate", "--model", TestPaths.TinySd1, "--concept", concept, "--prompt", "a {}", "--out", temp.File("img\u001B[2J")], console);
        Assert.Equal(2, exit);
        string output = text.ToString();
        Assert.Contains("\\x1B]0;pwned\\x07", output);
        Assert.DoesNotContain('\u001B', output);
        Assert.DoesNotContain('\u0007', output);
        Assert.DoesNotContain('\u009B', output);

        exit = await CliApp.RunAsync(["generate", "--bogus\u001B[31m"], console);
        Assert.NotEqual(0, exit);
        Assert.DoesNotContain('\u001B', text.ToString());
    }
}
