using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>A case folder: a direct sub-folder of a fixtures root that holds reference.json.</summary>
public sealed class FixtureCase
{
    private readonly Lazy<ReferenceManifest> _manifest;

    public FixtureCase(string name, string folder)
    {
        Name = name;
        Folder = folder;
        _manifest = new Lazy<ReferenceManifest>(() => ReferenceManifest.Load(Path.Combine(folder, "reference.json")));
    }

    /// <summary>The display name used in "&lt;case&gt;/&lt;check&gt;".</summary>
    public string Name { get; }
    public string Folder { get; }
    public ReferenceManifest Manifest => _manifest.Value;
    public string Kind => Manifest.CaseKind;

    public string PipelineFolder => Path.Combine(Folder, "pipeline");
    public string ReferenceFile => Path.Combine(Folder, "reference.safetensors");

    public bool HasTensor(string name) => Manifest.Tensors.ContainsKey(name);

    /// <summary>Opens the reference tensors (dispose after use).</summary>
    internal SafetensorsFile OpenReference() => SafetensorsFile.Open(ReferenceFile);

    public override string ToString() => Name;
}

/// <summary>Finds the fixture roots (tests/fixtures and $ATTNDREAMBOOTH_FIXTURES) and their case folders.</summary>
public static class FixtureRoots
{
    public const string EnvironmentVariable = "ATTNDREAMBOOTH_FIXTURES";

    /// <summary>The repository's tests/fixtures (compiled into the test assembly's metadata).</summary>
    public static string Builtin => TestPaths.FixturesRoot;

    public static IReadOnlyList<string> All()
    {
        var roots = new List<string> { Builtin };
        string? extra = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(extra))
        {
            string full = Path.GetFullPath(extra);
            if (!Directory.Exists(full))
                throw new DirectoryNotFoundException($"{EnvironmentVariable} names '{full}', which does not exist.");
            if (!roots.Any(r => Path.GetFullPath(r).TrimEnd('/') == full.TrimEnd('/'))) roots.Add(full);
        }
        return roots;
    }

    private static readonly Lazy<IReadOnlyDictionary<string, FixtureCase>> CasesByName = new(() =>
    {
        var cases = new Dictionary<string, FixtureCase>(StringComparer.Ordinal);
        foreach (string root in All())
        {
            foreach (string dir in Directory.EnumerateDirectories(root).OrderBy(d => d, StringComparer.Ordinal))
            {
                if (!File.Exists(Path.Combine(dir, "reference.json"))) continue;
                string name = Path.GetFileName(dir);
                if (cases.ContainsKey(name)) name = $"{name}@{Path.GetFileName(root.TrimEnd('/'))}";
                cases[name] = new FixtureCase(name, dir);
            }
        }
        return cases;
    });

    public static IReadOnlyDictionary<string, FixtureCase> Cases => CasesByName.Value;

    public static FixtureCase Get(string name) => Cases.TryGetValue(name, out var c) ? c : throw new KeyNotFoundException($"No fixture case '{name}'.");

    /// <summary>The real-size manifests folder.</summary>
    public static string RealSize => Path.Combine(Builtin, "real-size");
}
