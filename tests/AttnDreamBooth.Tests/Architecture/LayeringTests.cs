using ArchUnitNET.Domain;
using ArchUnitNET.Loader;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>
/// The library's namespaces form the layers of docs/architecture.md: each may use only those before it, namespaces on
/// the same layer (the U-Net, the VAE and LoRA) do not use each other, and there is no cycle between any two namespaces.
/// Dependencies are read from the compiled assembly, so a using directive alone does not count; a call does.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>The layers in dependency order; namespaces on one line share a layer.</summary>
    internal static readonly string[][] Layers =
    [
        ["AttnDreamBooth"],
        ["AttnDreamBooth.IO"],
        ["AttnDreamBooth.Imaging"],
        ["AttnDreamBooth.Models.Blocks"],
        ["AttnDreamBooth.Models.Attention"],
        ["AttnDreamBooth.Models.Clip"],
        ["AttnDreamBooth.Models.UNet", "AttnDreamBooth.Models.Vae", "AttnDreamBooth.Models.Lora"],
        ["AttnDreamBooth.Text"],
        ["AttnDreamBooth.Schedulers"],
        ["AttnDreamBooth.StableDiffusion"],
        ["AttnDreamBooth.Training"],
        ["AttnDreamBooth.Personalization"],
        ["AttnDreamBooth.Evaluation"],
    ];

    private static readonly Lazy<IReadOnlyDictionary<string, HashSet<string>>> Graph = new(BuildGraph);

    /// <summary>Namespace → the library namespaces its types use (from the IL of the library assembly).</summary>
    private static IReadOnlyDictionary<string, HashSet<string>> BuildGraph()
    {
        var architecture = new ArchLoader().LoadAssemblies(typeof(SafetensorsFile).Assembly).Build();
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in architecture.Types)
        {
            string origin = type.Namespace?.FullName ?? "";
            if (!IsLibrary(origin)) continue;
            if (!graph.TryGetValue(origin, out var targets)) graph[origin] = targets = new HashSet<string>(StringComparer.Ordinal);
            foreach (var dependency in type.Dependencies)
            {
                string target = dependency.Target?.Namespace?.FullName ?? "";
                if (IsLibrary(target) && target != origin) targets.Add(target);
            }
        }
        return graph;
    }

    private static bool IsLibrary(string ns) => ns == "AttnDreamBooth" || ns.StartsWith("AttnDreamBooth.", StringComparison.Ordinal);

    /// <summary>The layer of a namespace (a sub-namespace belongs to its parent's layer, except below the root, which
    /// holds only the exception base), or -1.</summary>
    internal static int LayerOf(string ns)
    {
        if (ns == Layers[0][0]) return 0;
        for (int i = 1; i < Layers.Length; i++)
        {
            if (Layers[i].Any(l => ns == l || ns.StartsWith(l + ".", StringComparison.Ordinal))) return i;
        }
        return -1;
    }

    [Fact]
    public void EveryNamespaceBelongsToALayer()
    {
        var unknown = Graph.Value.Keys.Where(ns => LayerOf(ns) < 0).Order(StringComparer.Ordinal).ToArray();
        Assert.True(unknown.Length == 0, "namespaces outside the layer list: " + string.Join(", ", unknown));
    }

    [Fact]
    public void NoNamespaceUsesALaterOrSiblingLayer()
    {
        var violations = new List<string>();
        foreach (var (origin, targets) in Graph.Value)
        {
            foreach (string target in targets)
            {
                if (!Allowed(origin, target)) violations.Add($"{origin} -> {target}");
            }
        }
        violations.Sort(StringComparer.Ordinal);
        Assert.True(violations.Count == 0, "dependencies against the layer order:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void NoSourceFileImportsALaterOrSiblingLayer()
    {
        // The compiled graph misses what leaves no reference in IL (constants, nameof, doc references); the using
        // directives of the sources show it.
        string src = Path.Combine(TestPaths.RepoRoot, "src", "AttnDreamBooth");
        var violations = new List<string>();
        foreach (string file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)) continue;
            var lines = File.ReadAllLines(file);
            string? origin = lines.FirstOrDefault(l => l.StartsWith("namespace ", StringComparison.Ordinal))?["namespace ".Length..].TrimEnd(';', ' ');
            if (origin is null) continue;
            foreach (string line in lines.Where(l => l.StartsWith("using AttnDreamBooth", StringComparison.Ordinal) && !l.Contains('=')))
            {
                string target = line["using ".Length..].TrimEnd(';', ' ');
                if (!Allowed(origin, target)) violations.Add($"{Path.GetRelativePath(src, file)}: {origin} uses {target}");
            }
        }
        Assert.True(violations.Count == 0, "using directives against the layer order:\n" + string.Join("\n", violations));
    }

    private static bool Allowed(string origin, string target)
    {
        int from = LayerOf(origin), to = LayerOf(target);
        if (from < 0 || to < 0) return false;
        bool family = origin == target || origin.StartsWith(target + ".", StringComparison.Ordinal) || target.StartsWith(origin + ".", StringComparison.Ordinal);
        return to < from || (to == from && family);
    }

    [Fact]
    public void NamespacesHaveNoCycles()
    {
        var cycles = FindCycles(Graph.Value);
        Assert.True(cycles.Count == 0, "namespace cycles:\n" + string.Join("\n", cycles.Select(c => string.Join(" -> ", c))));
    }

    [Fact]
    public void TheCycleFinderFindsACycle()
    {
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B"],
            ["B"] = ["C"],
            ["C"] = ["A"],
            ["D"] = ["A"],
        };
        var cycle = Assert.Single(FindCycles(graph));
        Assert.Equal(["A", "B", "C"], cycle.Order(StringComparer.Ordinal));
    }

    /// <summary>The strongly connected components with more than one namespace (Tarjan).</summary>
    internal static List<List<string>> FindCycles(IReadOnlyDictionary<string, HashSet<string>> graph)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<List<string>>();
        int counter = 0;

        void Visit(string v)
        {
            index[v] = low[v] = counter++;
            stack.Push(v);
            onStack.Add(v);
            foreach (string w in graph.TryGetValue(v, out var next) ? next : [])
            {
                if (!index.ContainsKey(w))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], index[w]);
                }
            }
            if (low[v] != index[v]) return;
            var component = new List<string>();
            string x;
            do
            {
                x = stack.Pop();
                onStack.Remove(x);
                component.Add(x);
            } while (x != v);
            if (component.Count > 1) result.Add(component);
        }

        foreach (string v in graph.Keys.Order(StringComparer.Ordinal))
        {
            if (!index.ContainsKey(v)) Visit(v);
        }
        return result;
    }
}
