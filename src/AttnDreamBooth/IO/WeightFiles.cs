using System.Text.Json;

namespace AttnDreamBooth.IO;

/// <summary>
/// Locates the safetensors weights of one model component folder: a single file or a sharded set
/// (<c>*.safetensors.index.json</c>), optionally of a weight variant such as <c>fp16</c>.
/// </summary>
internal static class WeightFiles
{
    private static readonly string[] BaseNames = ["diffusion_pytorch_model", "model"];
    private static readonly string[] PickleExtensions = [".bin", ".ckpt", ".pt", ".pth", ".pkl"];

    /// <summary>Returns the safetensors files holding the component's weights.</summary>
    /// <param name="componentFolder">e.g. <c>…/unet</c>.</param>
    /// <param name="variant">A diffusers weight variant (<c>fp16</c>, <c>ema</c>, …) or null for the plain weights.
    /// With null, a folder that only holds one variant's weights uses those.</param>
    /// <exception cref="ModelConfigException">No weights are found, or the sharded index is malformed.</exception>
    /// <exception cref="InvalidWeightsException">Only pickle weights are present.</exception>
    public static IReadOnlyList<string> Resolve(string componentFolder, string? variant = null)
    {
        string folder = Path.GetFullPath(componentFolder);
        if (!Directory.Exists(folder)) throw new ModelConfigException(folder, null, "the component folder does not exist");
        foreach (string baseName in BaseNames)
        {
            string single = Path.Combine(folder, variant is null ? $"{baseName}.safetensors" : $"{baseName}.{variant}.safetensors");
            if (File.Exists(single)) return [single];
            string index = Path.Combine(folder, variant is null ? $"{baseName}.safetensors.index.json" : $"{baseName}.safetensors.index.{variant}.json");
            if (File.Exists(index)) return ReadShardIndex(index);
        }
        if (variant is null)
        {
            var variants = FindVariants(folder);
            if (variants.Length == 1) return Resolve(folder, variants[0]);
            if (variants.Length > 1)
                throw new ModelConfigException(folder, null, $"holds several weight variants ({string.Join(", ", variants)}) and no plain weights; choose one");
        }
        var pickle = Directory.EnumerateFiles(folder).FirstOrDefault(f => PickleExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase));
        if (pickle is not null) throw InvalidWeightsException.Pickle(pickle);
        string what = variant is null ? "safetensors weights" : $"safetensors weights of variant '{variant}'";
        throw new ModelConfigException(folder, null, $"no {what} found (expected diffusion_pytorch_model[.{variant ?? "<variant>"}].safetensors, model.safetensors or a *.safetensors.index.json)");
    }

    /// <summary>Variants present in a folder: single files <c>base.&lt;variant&gt;.safetensors</c> and sharded
    /// indexes <c>base.safetensors.index.&lt;variant&gt;.json</c> (whose shards, <c>base.&lt;variant&gt;-00001-of-00002
    /// .safetensors</c>, are not variants of their own).</summary>
    private static string[] FindVariants(string folder)
    {
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(folder))
        {
            string[] parts = Path.GetFileName(file).Split('.');
            if (parts.Length == 3 && BaseNames.Contains(parts[0]) && parts[2] == "safetensors" && !ShardSuffix.IsMatch(parts[1]))
                found.Add(parts[1]);
            else if (parts.Length == 5 && BaseNames.Contains(parts[0]) && parts[1] == "safetensors" && parts[2] == "index" && parts[4] == "json")
                found.Add(parts[3]);
        }
        return [.. found];
    }

    private static readonly System.Text.RegularExpressions.Regex ShardSuffix = new("-[0-9]+-of-[0-9]+$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static IReadOnlyList<string> ReadShardIndex(string indexPath)
    {
        var config = ConfigReader.Load(indexPath);
        if (config.Raw("weight_map") is not { ValueKind: JsonValueKind.Object } map)
            throw new ModelConfigException(indexPath, "weight_map", "missing or not an object");
        string folder = Path.GetDirectoryName(indexPath)!;
        var files = new List<string>();
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new ModelConfigException(indexPath, "weight_map", $"entry '{entry.Name}' is not a file name");
            string shard = entry.Value.GetString()!;
            if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard.Contains('\0') || shard is "." or "..")
                throw new ModelConfigException(indexPath, "weight_map", $"shard '{shard}' must be a file name inside the folder");
            string full = Path.Combine(folder, shard);
            if (!files.Contains(full)) files.Add(full);
        }
        foreach (string f in files)
        {
            if (!File.Exists(f)) throw new ModelConfigException(indexPath, "weight_map", $"shard '{Path.GetFileName(f)}' does not exist");
        }
        if (files.Count == 0) throw new ModelConfigException(indexPath, "weight_map", "lists no shards");
        return files;
    }
}
