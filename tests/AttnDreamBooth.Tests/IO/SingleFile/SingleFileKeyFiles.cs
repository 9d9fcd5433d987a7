using System.Text.Json;
using AttnDreamBooth.IO.SingleFile;

namespace AttnDreamBooth.Tests.IO.SingleFile;

/// <summary>A parsed single_file_keys.json (real-size or a case's) with the configs that describe it.</summary>
internal sealed record KeyFileEntry(string OriginalKey, string Op, string?[] To, long[] Shape, long[]? ToShape);

internal sealed class SingleFileKeyFile
{
    public required string Path { get; init; }
    public required StableDiffusionFamily Family { get; init; }
    public required IReadOnlyList<KeyFileEntry> Entries { get; init; }
    public required IReadOnlyList<string> OnlyInOriginalKeys { get; init; }
    public required bool MentionsEmaPattern { get; init; }

    public static SingleFileKeyFile Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var family = root.GetProperty("family").GetString() switch
        {
            "sd1" => StableDiffusionFamily.Sd1,
            "sd2" => StableDiffusionFamily.Sd2,
            var f => throw new InvalidDataException($"{path}: unknown family '{f}'"),
        };
        var entries = new List<KeyFileEntry>();
        foreach (var p in root.GetProperty("keys").EnumerateObject())
        {
            var v = p.Value;
            var toElement = v.GetProperty("to");
            string?[] to = toElement.ValueKind switch
            {
                JsonValueKind.Null => [],
                JsonValueKind.String => [toElement.GetString()],
                _ => toElement.EnumerateArray().Select(e => e.GetString()).ToArray(),
            };
            entries.Add(new KeyFileEntry(p.Name, v.GetProperty("op").GetString()!, to, Shape(v.GetProperty("shape")),
                v.TryGetProperty("to_shape", out var ts) ? Shape(ts) : null));
        }
        var only = new List<string>();
        bool ema = false;
        if (root.TryGetProperty("only_in_original_files", out var o) && o.ValueKind == JsonValueKind.Array)
        {
            foreach (var group in o.EnumerateArray())
            {
                if (group.ValueKind != JsonValueKind.Object) continue;
                if (group.TryGetProperty("keys", out var keys)) only.AddRange(keys.EnumerateArray().Select(k => k.GetString()!));
                if (group.TryGetProperty("pattern", out var pattern) && pattern.GetString()!.StartsWith("model_ema.", StringComparison.Ordinal)) ema = true;
            }
        }
        return new SingleFileKeyFile { Path = path, Family = family, Entries = entries, OnlyInOriginalKeys = only, MentionsEmaPattern = ema };
    }

    private static long[] Shape(JsonElement e) => e.EnumerateArray().Select(d => d.GetInt64()).ToArray();

    internal static SingleFileOp ParseOp(string op) => op switch
    {
        "copy" => SingleFileOp.Copy,
        "reshape" => SingleFileOp.Reshape,
        "split_dim0" => SingleFileOp.SplitDim0,
        _ => throw new InvalidDataException($"unknown op '{op}'"),
    };
}
