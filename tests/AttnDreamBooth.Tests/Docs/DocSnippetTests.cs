namespace AttnDreamBooth.Tests.Docs;

/// <summary>Every C# snippet in README.md and docs/*.md compiles against the library as a console app would compile it
/// (fragments with the context their document declares in a hidden <c>&lt;!-- snippet context: … --&gt;</c> comment).</summary>
public sealed class DocSnippetTests
{
    public static TheoryData<string, int> Snippets()
    {
        var data = new TheoryData<string, int>();
        foreach (string file in MarkdownSnippets.DocumentFiles())
            foreach (var snippet in MarkdownSnippets.Blocks(file, "csharp"))
                data.Add(file, snippet.Index);
        return data;
    }

    [Theory]
    [MemberData(nameof(Snippets))]
    public void SnippetCompiles(string file, int index)
    {
        var snippet = MarkdownSnippets.Blocks(file, "csharp")[index - 1];
        var errors = SnippetCompiler.Errors(snippet);
        Assert.True(errors.Count == 0,
            $"{snippet} does not compile:\n{string.Join('\n', errors)}\n" +
            "A fragment declares what it uses (variables, usings) in a hidden comment on the lines right above its fence:\n" +
            "<!-- snippet context:\nPersonalizationPipeline pipeline = null!;\n-->");
    }

    [Fact]
    public void EveryDocumentIsScannedAndItsSnippetsFound()
    {
        // Guards the extraction itself: a parser that found nothing would make the theory above pass vacuously.
        var files = MarkdownSnippets.DocumentFiles();
        Assert.Contains("README.md", files);
        Assert.Contains("docs/getting-started.md", files);
        foreach (string file in files)
        {
            int fences = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, file)).Count(l => l.Trim().Equals("```csharp", StringComparison.OrdinalIgnoreCase));
            Assert.Equal(fences, MarkdownSnippets.Blocks(file, "csharp").Count);
        }
        Assert.True(files.Sum(f => MarkdownSnippets.Blocks(f, "csharp").Count) >= 20);
    }

    [Fact]
    public void ABrokenSnippetIsReportedAtItsDocumentLine()
    {
        var broken = new MarkdownSnippet("docs/example.md", 1, 10, "var concept = Concept.FromFolder(\"photos\", \"dog\");\nconcept.TrainingPrompt;", "");
        var errors = SnippetCompiler.Errors(broken);
        var error = Assert.Single(errors);
        Assert.Contains("docs/example.md(11,", error);
        Assert.Contains("CS0201", error);

        var withContext = new MarkdownSnippet("docs/example.md", 2, 20, "Console.WriteLine(pipeline.Plan.TotalSteps);", "PersonalizationPipeline pipeline = null!;");
        Assert.Empty(SnippetCompiler.Errors(withContext));
        Assert.NotEmpty(SnippetCompiler.Errors(withContext with { Context = "" }));
    }
}
