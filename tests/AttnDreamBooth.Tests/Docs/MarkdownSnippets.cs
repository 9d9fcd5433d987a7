using System.Text.RegularExpressions;

namespace AttnDreamBooth.Tests.Docs;

/// <summary>A fenced code block of a Markdown file, with the hidden context the document declares for it.</summary>
/// <param name="File">Path relative to the repository root.</param>
/// <param name="Index">1-based among the file's blocks of this language.</param>
/// <param name="Line">1-based line of the block's first code line.</param>
/// <param name="Context">The text of a <c>&lt;!-- snippet context: … --&gt;</c> comment right before the fence, or "".</param>
/// <param name="ContextLine">1-based line of the context's first line (0 without context).</param>
public sealed record MarkdownSnippet(string File, int Index, int Line, string Code, string Context, int ContextLine = 0)
{
    public override string ToString() => $"{File}#{Index} (line {Line})";
}

/// <summary>Reads the repository's Markdown: fenced blocks, inline code spans and the hidden snippet context.</summary>
public static partial class MarkdownSnippets
{
    /// <summary>README.md and every docs/*.md, relative to the repository root, in a stable order.</summary>
    public static IReadOnlyList<string> DocumentFiles() =>
        ["README.md", .. Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "docs"), "*.md").Select(f => "docs/" + Path.GetFileName(f)).Order(StringComparer.Ordinal)];

    /// <summary>Every fenced block whose info string is <paramref name="language"/> (or any block when null).</summary>
    public static IReadOnlyList<MarkdownSnippet> Blocks(string file, string? language)
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, file));
        var result = new List<MarkdownSnippet>();
        for (int i = 0; i < lines.Length; i++)
        {
            var open = Fence().Match(lines[i]);
            if (!open.Success) continue;
            string info = open.Groups[2].Value.Trim();
            int end = i + 1;
            while (end < lines.Length && !(lines[end].TrimStart().StartsWith(open.Groups[1].Value, StringComparison.Ordinal) && lines[end].Trim().Trim('`', '~').Length == 0)) end++;
            if (language is null || info.Equals(language, StringComparison.OrdinalIgnoreCase))
            {
                string code = string.Join('\n', lines[(i + 1)..Math.Min(end, lines.Length)]);
                var (context, contextLine) = ContextBefore(lines, i);
                result.Add(new MarkdownSnippet(file, result.Count + 1, i + 2, code, context, contextLine));
            }
            i = end;
        }
        return result;
    }

    /// <summary>Inline code spans outside fenced blocks, with their line numbers.</summary>
    public static IEnumerable<(int Line, string Text)> InlineCode(string file)
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, file));
        bool inFence = false;
        string fence = "";
        for (int i = 0; i < lines.Length; i++)
        {
            var open = Fence().Match(lines[i]);
            if (!inFence && open.Success) { inFence = true; fence = open.Groups[1].Value; continue; }
            if (inFence)
            {
                if (lines[i].TrimStart().StartsWith(fence, StringComparison.Ordinal) && lines[i].Trim().Trim('`', '~').Length == 0) inFence = false;
                continue;
            }
            foreach (Match m in InlineSpan().Matches(lines[i])) yield return (i + 1, m.Groups[2].Value);
        }
    }

    // The context is an HTML comment (invisible when rendered) that ends on the line before the fence.
    private static (string Text, int Line) ContextBefore(string[] lines, int fenceLine)
    {
        int last = fenceLine - 1;
        if (last < 0 || lines[last].Trim() != "-->") return ("", 0);
        int first = last - 1;
        while (first >= 0 && !lines[first].TrimStart().StartsWith("<!--", StringComparison.Ordinal)) first--;
        if (first < 0 || !lines[first].Contains("snippet context:", StringComparison.Ordinal)) return ("", 0);
        return (string.Join('\n', lines[(first + 1)..last]), first + 2);
    }

    [GeneratedRegex(@"^\s*(`{3,}|~{3,})\s*([^`]*)$")]
    private static partial Regex Fence();

    [GeneratedRegex(@"(`+)(?!`)(.+?)(?<!`)\1(?!`)")]
    private static partial Regex InlineSpan();
}
