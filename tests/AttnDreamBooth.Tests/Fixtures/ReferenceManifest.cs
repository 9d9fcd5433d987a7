using System.Text.Json;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Elementwise pass rule |actual - expected| &lt;= Atol + Rtol * |expected|; Exact means bit-equal.</summary>
public sealed record Tolerance(bool Exact, double Atol, double Rtol)
{
    public override string ToString() => Exact ? "exact" : $"atol {Atol:g3}, rtol {Rtol:g3}";
}

/// <summary>One tensor entry of reference.json.</summary>
public sealed record TensorSpec(string Name, string DType, long[] Shape, string Component, string Call, string Role, Tolerance Tolerance);

/// <summary>The parsed reference.json of a fixture case.</summary>
public sealed class ReferenceManifest
{
    private ReferenceManifest(string path, JsonElement root, IReadOnlyDictionary<string, TensorSpec> tensors)
    {
        FilePath = path;
        Root = root;
        Tensors = tensors;
    }

    public string FilePath { get; }
    public JsonElement Root { get; }
    public IReadOnlyDictionary<string, TensorSpec> Tensors { get; }

    public string CaseKind => Root.TryGetProperty("case_kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "";

    public JsonElement DerivedFacts => Root.GetProperty("derived_facts");

    /// <summary>A derived fact by its full key (keys contain dots, e.g. "unet.heads_per_down_block").</summary>
    public JsonElement Fact(string key) => DerivedFacts.TryGetProperty(key, out var v)
        ? v
        : throw new KeyNotFoundException($"{FilePath}: derived_facts has no '{key}'");

    public IEnumerable<TensorSpec> WithPrefix(string prefix) => Tensors.Values.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));

    public static ReferenceManifest Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement.Clone();
        var tensors = new Dictionary<string, TensorSpec>(StringComparer.Ordinal);
        if (root.TryGetProperty("tensors", out var t) && t.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in t.EnumerateObject())
            {
                var v = p.Value;
                var tol = v.TryGetProperty("tolerance", out var tt)
                    ? new Tolerance(
                        tt.TryGetProperty("exact", out var ex) && ex.ValueKind == JsonValueKind.True,
                        tt.TryGetProperty("atol", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble() : 0,
                        tt.TryGetProperty("rtol", out var r) && r.ValueKind == JsonValueKind.Number ? r.GetDouble() : 0)
                    : new Tolerance(true, 0, 0);
                tensors[p.Name] = new TensorSpec(
                    p.Name,
                    v.GetProperty("dtype").GetString()!,
                    v.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                    v.TryGetProperty("component", out var c) ? c.GetString() ?? "" : "",
                    v.TryGetProperty("call", out var call) ? call.GetString() ?? "" : "",
                    v.TryGetProperty("role", out var role) ? role.GetString() ?? "" : "",
                    tol);
            }
        }
        return new ReferenceManifest(path, root, tensors);
    }
}
