using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AttnDreamBooth.Tests.Docs;

/// <summary>
/// Compiles a documentation snippet as a user's console app would: top-level statements with the SDK's implicit usings,
/// referencing the library packages (AttnDreamBooth, AttnDreamBooth.Shapes and their dependencies). Every namespace the
/// library assemblies declare is a global using, so the snippets keep compiling when types move between namespaces;
/// a snippet's own <c>using</c> of a namespace that no longer exists still fails.
/// </summary>
public static partial class SnippetCompiler
{
    /// <summary>The assemblies a package consumer compiles against.</summary>
    public static IReadOnlyList<Assembly> LibraryAssemblies { get; } = [Assembly.Load("AttnDreamBooth"), Assembly.Load("AttnDreamBooth.Shapes")];

    // What `dotnet new console` with ImplicitUsings gives.
    private static readonly string[] ImplicitUsings =
        ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Threading", "System.Threading.Tasks"];

    private static readonly Lazy<IReadOnlyList<MetadataReference>> References = new(LoadReferences);

    private static readonly Lazy<SyntaxTree> GlobalUsings = new(() =>
    {
        var namespaces = LibraryAssemblies.SelectMany(a => a.GetExportedTypes()).Select(t => t.Namespace).OfType<string>();
        var text = new StringBuilder();
        foreach (string ns in ImplicitUsings.Concat(namespaces).Distinct().Order(StringComparer.Ordinal)) text.Append("global using ").Append(ns).AppendLine(";");
        return CSharpSyntaxTree.ParseText(text.ToString(), Options, "GlobalUsings.g.cs");
    });

    private static CSharpParseOptions Options { get; } = new(LanguageVersion.CSharp14);

    /// <summary>The namespaces made global (for messages).</summary>
    public static string GlobalUsingsText => GlobalUsings.Value.ToString();

    /// <summary>The errors of the snippet with its context, located in the Markdown file.</summary>
    public static IReadOnlyList<string> Errors(MarkdownSnippet snippet)
    {
        var (contextHeader, contextBody) = SplitUsings(snippet.Context);
        var (header, body) = SplitUsings(snippet.Code);
        // The body keeps the document's line numbers, so an error names the line a reader sees.
        string source = string.Join('\n', contextHeader.Concat(header)) + "\n" +
                        (snippet.ContextLine > 0 ? $"#line {snippet.ContextLine + contextHeader.Count} \"{snippet.File}\"\n" : "") + string.Join('\n', contextBody) + "\n" +
                        $"#line {snippet.Line + header.Count} \"{snippet.File}\"\n" + string.Join('\n', body) + "\n";
        var tree = CSharpSyntaxTree.ParseText(source, Options, "Snippet.cs");
        bool hasStatements = tree.GetCompilationUnitRoot().Members.OfType<GlobalStatementSyntax>().Any();
        var compilation = CSharpCompilation.Create(
            "Snippet",
            [GlobalUsings.Value, tree],
            References.Value,
            new CSharpCompilationOptions(hasStatements ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        return compilation.GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error)
            .Select(d => d.ToString())
            .ToList();
    }

    // Leading using directives (and the comments and blank lines among them) go to the top of the file; the rest is
    // statements and declarations. `using var` and `using (` are statements.
    private static (List<string> Header, List<string> Body) SplitUsings(string code)
    {
        var lines = code.Length == 0 ? [] : code.Split('\n').ToList();
        int split = 0;
        for (int i = 0; i < lines.Count; i++)
        {
            string line = lines[i].Trim();
            if (UsingDirective().IsMatch(line)) split = i + 1;
            else if (line.Length > 0 && !line.StartsWith("//", StringComparison.Ordinal)) break;
        }
        return (lines[..split], lines[split..]);
    }

    private static IReadOnlyList<MetadataReference> LoadReferences()
    {
        // The shared framework as the runtime has it, plus the library assemblies and everything they reference.
        string runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var paths = Directory.GetFiles(runtimeDir, "*.dll")
            .Where(p => { try { AssemblyName.GetAssemblyName(p); return true; } catch (BadImageFormatException) { return false; } })
            .ToHashSet(StringComparer.Ordinal);
        var pending = new Stack<Assembly>(LibraryAssemblies);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            var assembly = pending.Pop();
            if (!seen.Add(assembly.GetName().Name!)) continue;
            if (Path.GetDirectoryName(assembly.Location) != runtimeDir) paths.Add(assembly.Location);
            foreach (var name in assembly.GetReferencedAssemblies())
            {
                Assembly referenced;
                try { referenced = Assembly.Load(name); }
                catch (FileNotFoundException) { continue; }
                pending.Push(referenced);
            }
        }
        return paths.Order(StringComparer.Ordinal).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();
    }

    [GeneratedRegex(@"^using\s+(static\s+)?([A-Za-z_][\w.]*\s*=\s*)?[A-Za-z_][\w.<>, ]*;\s*(//.*)?$")]
    private static partial Regex UsingDirective();
}
