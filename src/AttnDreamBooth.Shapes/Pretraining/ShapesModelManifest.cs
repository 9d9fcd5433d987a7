using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>One file of an exported model.</summary>
/// <param name="Path">Path relative to the model folder, with '/' separators.</param>
/// <param name="Bytes">Size in bytes.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the content.</param>
public sealed record ManifestFile(string Path, long Bytes, string Sha256);

/// <summary>
/// <c>manifest.json</c> of an exported Shapes model: the recipe and seed it was trained with, how long it trained, the
/// final losses, and the size and SHA-256 of every other file in the folder.
/// </summary>
public static class ShapesModelManifest
{
    /// <summary>The manifest's file name.</summary>
    public const string FileName = "manifest.json";

    /// <summary>The <c>format</c> value that identifies the manifest.</summary>
    public const string Format = "attndreambooth-shapes-model";

    /// <summary>Sizes and hashes of every file under <paramref name="folder"/> except the manifest, sorted by path.</summary>
    public static IReadOnlyList<ManifestFile> HashFiles(string folder)
    {
        string root = System.IO.Path.GetFullPath(folder);
        return Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => (Full: f, Relative: System.IO.Path.GetRelativePath(root, f).Replace(System.IO.Path.DirectorySeparatorChar, '/')))
            .Where(f => f.Relative != FileName)
            .OrderBy(f => f.Relative, StringComparer.Ordinal)
            .Select(f =>
            {
                using var stream = File.OpenRead(f.Full);
                return new ManifestFile(f.Relative, stream.Length, Convert.ToHexStringLower(SHA256.HashData(stream)));
            })
            .ToArray();
    }

    /// <summary>The files a manifest lists.</summary>
    /// <exception cref="ModelConfigException">The manifest is missing or malformed.</exception>
    public static IReadOnlyList<ManifestFile> ReadFiles(string folder)
    {
        string path = System.IO.Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new ModelConfigException(path, null, "the model's manifest is missing");
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ModelConfigException(path, null, "is not a JSON object");
            if ((string?)root["format"] != Format) throw new ModelConfigException(path, "format", $"expected '{Format}'");
            var files = root["files"] as JsonArray ?? throw new ModelConfigException(path, "files", "is missing");
            return files.Select(f => new ManifestFile(
                (string?)f?["path"] ?? throw new ModelConfigException(path, "files", "an entry lacks 'path'"),
                (long?)f!["bytes"] ?? throw new ModelConfigException(path, "files", "an entry lacks 'bytes'"),
                (string?)f!["sha256"] ?? throw new ModelConfigException(path, "files", "an entry lacks 'sha256'"))).ToArray();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new ModelConfigException(path, null, $"is not a valid manifest ({ex.Message})", ex);
        }
    }

    /// <summary>Compares the folder's files with its manifest; returns one line per problem (empty: the folder is intact).</summary>
    public static IReadOnlyList<string> Verify(string folder)
    {
        var expected = ReadFiles(folder).ToDictionary(f => f.Path, StringComparer.Ordinal);
        var actual = HashFiles(folder).ToDictionary(f => f.Path, StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (path, file) in expected)
        {
            if (!actual.TryGetValue(path, out var found)) problems.Add($"{path}: missing");
            else if (found.Sha256 != file.Sha256 || found.Bytes != file.Bytes) problems.Add($"{path}: sha256 {found.Sha256} ({found.Bytes} bytes), manifest says {file.Sha256} ({file.Bytes} bytes)");
        }
        foreach (string path in actual.Keys.Where(p => !expected.ContainsKey(p))) problems.Add($"{path}: not in the manifest");
        return problems;
    }

    internal static string Build(PretrainingRecipe recipe, PretrainingCheckpointState state, string dtype, IReadOnlyList<ManifestFile> files, IReadOnlyDictionary<string, string>? notes,
        string? weights = null)
    {
        static double Tail(IReadOnlyList<double> values) => values.Count == 0 ? double.NaN : values.Skip(Math.Max(0, values.Count - 50)).Average();
        var recipeNode = JsonNode.Parse(recipe.ToJson())!;
        var o = new JsonObject
        {
            ["format"] = Format,
            ["format_version"] = 1,
            ["seed"] = recipe.Seed,
            ["recipe_fingerprint"] = recipe.Fingerprint(),
            ["weights_dtype"] = dtype,
            ["training"] = new JsonObject
            {
                ["vae_steps_done"] = state.VaeLosses.Count,
                ["unet_steps_done"] = state.UNetLosses.Count,
                ["complete"] = state.IsComplete(recipe),
                ["vae_seconds"] = Math.Round(state.VaeSeconds, 1),
                ["unet_seconds"] = Math.Round(state.UNetSeconds, 1),
                ["vae_loss_last50"] = Finite(Tail(state.VaeLosses)),
                ["unet_objective_last50"] = Finite(Tail(state.UNetLosses)),
                ["unet_mse_last50"] = Finite(Tail(state.UNetMse)),
                ["latent_scaling_factor"] = state.ScalingFactor,
            },
            ["recipe"] = recipeNode,
            ["total_bytes"] = files.Sum(f => f.Bytes),
            ["files"] = new JsonArray(files.Select(f => (JsonNode?)new JsonObject { ["path"] = f.Path, ["bytes"] = f.Bytes, ["sha256"] = f.Sha256 }).ToArray()),
        };
        // Only runs that kept a weight average say which weights the folder holds ("average" or "last"), so the manifests
        // of runs without one are written as before.
        if (weights is not null) o["denoiser_weights"] = weights;
        if (notes is { Count: > 0 })
        {
            var n = new JsonObject();
            foreach (var (k, v) in notes.OrderBy(p => p.Key, StringComparer.Ordinal)) n[k] = v;
            o["notes"] = n;
        }
        return JsonFiles.Serialize(o) + "\n";
    }

    private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;
}
