using System.Text.RegularExpressions;
using AttnDreamBooth.Tests.Limits;

namespace AttnDreamBooth.Tests.Docs;

/// <summary>Every CLI flag README.md and docs/*.md name is one the CLI's <c>--help</c> lists, for the command it is used with.</summary>
public sealed partial class DocCliFlagTests
{
    private static readonly Lazy<CliHelp> Help = new(CliHelp.Read);

    [Fact]
    public void FlagsInTheDocsExistInTheCliHelp()
    {
        var help = Help.Value;
        var problems = new List<string>();
        int checkedFlags = 0;
        foreach (string file in MarkdownSnippets.DocumentFiles())
        {
            foreach (var (line, text) in CommandLines(file))
            {
                var tokens = Tokens(text);
                var command = help.CommandPath(tokens, out int consumed);
                foreach (string flag in tokens.Skip(consumed).Where(t => t.StartsWith("--", StringComparison.Ordinal)).Select(t => t.Split('=')[0]))
                {
                    checkedFlags++;
                    if (!help.Options[command].Contains(flag)) problems.Add($"{file}:{line}: `{command} {flag}` is not in `{command} --help`");
                }
            }
            foreach (var (line, text) in InlineCode(file).Where(c => c.Text.StartsWith("--", StringComparison.Ordinal)))
            {
                // A flag named alone in prose: some command must have it (other tools' flags are listed in NotCli).
                foreach (string flag in Tokens(text).Where(t => t.StartsWith("--", StringComparison.Ordinal)).Select(t => t.Split('=')[0]))
                {
                    checkedFlags++;
                    if (!NotCli.Contains(flag) && !help.Options.Values.Any(o => o.Contains(flag))) problems.Add($"{file}:{line}: `{flag}` is not an option of any CLI command");
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.True(checkedFlags >= 50, $"only {checkedFlags} flags found in the docs: the extraction is broken");
    }

    [Fact]
    public void AnInventedFlagIsCaught()
    {
        var help = Help.Value;
        var tokens = Tokens("train --model m --images p --category dog --out o --stepz 1,1,1");
        var command = help.CommandPath(tokens, out int consumed);
        Assert.Equal("train", command);
        var unknown = tokens.Skip(consumed).Where(t => t.StartsWith("--", StringComparison.Ordinal) && !help.Options[command].Contains(t)).ToList();
        Assert.Equal(["--stepz"], unknown);
        Assert.Equal("shapes render", help.CommandPath(Tokens("shapes render --concept c.json --out x"), out _));
        Assert.Contains("--sampler", help.Options["generate"]);
        Assert.DoesNotContain("--sampler", help.Options["train"]);
    }

    // Flags of other tools that the docs name on their own in prose (dotnet, BenchmarkDotNet, the benchmarks program's
    // measurement commands, the experiment's Python helper).
    private static readonly HashSet<string> NotCli =
        ["--project", "--filter", "--no-build", "--configfile", "--name", "--inProcess", "--launchCount", "--warmupCount", "--iterationCount",
         "--variants", "--json", "--pixels"];

    /// <summary>CLI invocations: lines of fenced blocks and inline spans that run AttnDreamBooth.Cli (the arguments
    /// after <c>--</c>), and inline spans or lines that start with a CLI command (`train --resume`, `… shapes render …`).</summary>
    private static IEnumerable<(int Line, string Text)> CommandLines(string file)
    {
        foreach (var block in MarkdownSnippets.Blocks(file, null))
        {
            var lines = block.Code.Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                int start = i;
                string line = lines[i];
                while (line.TrimEnd().EndsWith('\\') && i + 1 < lines.Length) line = line.TrimEnd()[..^1] + " " + lines[++i];
                if (Arguments(line) is { } args) yield return (block.Line + start, args);
            }
        }
        foreach (var (line, text) in InlineCode(file))
            if (Arguments(text) is { } args) yield return (line, args);
    }

    private static IEnumerable<(int Line, string Text)> InlineCode(string file) => MarkdownSnippets.InlineCode(file);

    private static string? Arguments(string text)
    {
        text = StripComment(text).Trim();
        var run = CliRun().Match(text);
        if (run.Success) return run.Groups[1].Value;
        if (text.StartsWith("AttnDreamBooth.Cli ", StringComparison.Ordinal)) return text["AttnDreamBooth.Cli ".Length..];
        text = text.TrimStart('…', '.', ' ');
        return StartsWithCommand().IsMatch(text) ? text : null;
    }

    private static string StripComment(string line)
    {
        int hash = line.IndexOf(" #", StringComparison.Ordinal);
        return hash >= 0 ? line[..hash] : line;
    }

    // Shell words, quotes removed; `[--resume]` style optional parts count as the flag.
    private static List<string> Tokens(string text) =>
        ShellWord().Matches(text).Select(m => m.Value.Trim('"', '\'', '[', ']', '|')).Where(t => t.Length > 0).ToList();

    [GeneratedRegex(@"AttnDreamBooth\.Cli\b.*?\s--(?:\s+(.*)|$)")]
    private static partial Regex CliRun();

    [GeneratedRegex(@"^(train|generate|evaluate|export|shapes)\s+(--|render|analyze|accuracy|pretrain|quality|experiment|export)")]
    private static partial Regex StartsWithCommand();

    [GeneratedRegex(@"""[^""]*""|'[^']*'|[^\s]+")]
    private static partial Regex ShellWord();

    /// <summary>The options and subcommands of every command, read from the built CLI's <c>--help</c>.</summary>
    private sealed partial class CliHelp
    {
        public Dictionary<string, HashSet<string>> Options { get; } = [];
        private readonly Dictionary<string, HashSet<string>> _subcommands = [];

        public static CliHelp Read()
        {
            var help = new CliHelp();
            var pending = new Queue<string>([""]);
            while (pending.Count > 0)
            {
                string command = pending.Dequeue();
                var args = command.Length == 0 ? new List<string>() : command.Split(' ').ToList();
                args.Add("--help");
                var result = BoundedCli.Run(args, TimeSpan.FromSeconds(60), limitAddressSpace: false);
                Assert.True(result.ExitCode == 0, $"`{string.Join(' ', args)}` failed:\n{result.Output}");
                var (options, subcommands) = Parse(result.Output);
                help.Options[command] = options;
                help._subcommands[command] = subcommands;
                foreach (string sub in subcommands) pending.Enqueue((command + " " + sub).Trim());
            }
            return help;
        }

        /// <summary>The longest command path the leading tokens spell ("" for the root).</summary>
        public string CommandPath(IReadOnlyList<string> tokens, out int consumed)
        {
            string command = "";
            consumed = 0;
            while (consumed < tokens.Count && _subcommands[command].Contains(tokens[consumed]))
                command = (command + " " + tokens[consumed++]).Trim();
            return command;
        }

        private static (HashSet<string> Options, HashSet<string> Subcommands) Parse(string output)
        {
            var options = new HashSet<string>(StringComparer.Ordinal);
            var subcommands = new HashSet<string>(StringComparer.Ordinal);
            string section = "";
            foreach (string line in output.Split('\n'))
            {
                if (line.Length > 0 && !char.IsWhiteSpace(line[0])) { section = line.Trim(); continue; }
                string item = line.Trim();
                if (item.Length == 0) continue;
                if (section == "Options:")
                    foreach (Match m in OptionName().Matches(item.Split("  ")[0])) options.Add(m.Value);
                else if (section == "Commands:")
                    subcommands.Add(item.Split(' ')[0]);
            }
            return (options, subcommands);
        }

        [GeneratedRegex(@"--[A-Za-z0-9][\w-]*")]
        private static partial Regex OptionName();
    }
}
