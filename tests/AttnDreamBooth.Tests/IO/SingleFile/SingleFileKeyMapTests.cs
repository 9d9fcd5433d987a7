using System.Text.Json;
using AttnDreamBooth.IO.SingleFile;

namespace AttnDreamBooth.Tests.IO.SingleFile;

/// <summary>
/// The generated key maps cover the reference key maps completely: every original key of the real-size SD 1.5 / 2.1 /
/// 2.1-base and the tiny cases maps to the listed diffusers key(s) with the listed op and shapes, the diffusers keys
/// produced are exactly the model's state dict, every only-in-original key is recognised, and the reverse map gives
/// every original key back.
/// </summary>
public sealed class SingleFileKeyMapTests
{
    /// <summary>"real-size/&lt;variant&gt;" (with the key file of the variant or, for 2.1-base, of 2.1) and "&lt;case&gt;".</summary>
    public static TheoryData<string> KeyMaps()
    {
        var data = new TheoryData<string>();
        foreach (string variant in Directory.EnumerateDirectories(FixtureRoots.RealSize).Select(Path.GetFileName).Order(StringComparer.Ordinal)!)
        {
            if (KeyFileOf(Path.Combine(FixtureRoots.RealSize, variant!)) is not null) data.Add($"real-size/{variant}");
        }
        foreach (var fixture in FixtureRoots.Cases.Values)
        {
            if (File.Exists(Path.Combine(fixture.Folder, "single-file", "single_file_keys.json"))) data.Add(fixture.Name);
        }
        return data;
    }

    private static string? KeyFileOf(string variantFolder)
    {
        string own = Path.Combine(variantFolder, "single_file_keys.json");
        if (File.Exists(own)) return own;
        // The README states that 2.1-base has exactly the keys of 2.1.
        string name = Path.GetFileName(variantFolder);
        string sibling = Path.Combine(Path.GetDirectoryName(variantFolder)!, name.Replace("-base", "", StringComparison.Ordinal), "single_file_keys.json");
        return name.EndsWith("-base", StringComparison.Ordinal) && File.Exists(sibling) ? sibling : null;
    }

    private static (SingleFileKeyFile Keys, string ConfigRoot, Func<string, Dictionary<string, long[]>?> ExpectedShapes) Load(string id)
    {
        if (id.StartsWith("real-size/", StringComparison.Ordinal))
        {
            string folder = Path.Combine(FixtureRoots.RealSize, id["real-size/".Length..]);
            return (SingleFileKeyFile.Load(KeyFileOf(folder)!), folder, component => ReadShapes(Path.Combine(folder, component, "state_dict_shapes.json")));
        }
        var fixture = FixtureRoots.Get(id);
        string pipeline = fixture.PipelineFolder;
        return (SingleFileKeyFile.Load(Path.Combine(fixture.Folder, "single-file", "single_file_keys.json")), pipeline, component =>
        {
            using var source = AttnDreamBooth.IO.StateDictSource.OpenComponent(Path.Combine(pipeline, component));
            return source.Names.ToDictionary(n => n, n => source.ShapeOf(n));
        });
    }

    private static Dictionary<string, long[]> ReadShapes(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray());
    }

    private static SingleFileArchitecture Architecture(string configRoot) => SingleFileArchitecture.FromConfigs(
        Path.Combine(configRoot, "unet", "config.json"), Path.Combine(configRoot, "vae", "config.json"), Path.Combine(configRoot, "text_encoder", "config.json"));

    [Theory]
    [MemberData(nameof(KeyMaps))]
    public void EveryOriginalKeyMapsAsListed(string id)
    {
        var (keys, configRoot, expectedShapes) = Load(id);
        var map = SingleFileKeyMap.Create(keys.Family, Architecture(configRoot));
        var produced = SingleFileComponents.All.ToDictionary(c => c, _ => new Dictionary<string, long[]>(StringComparer.Ordinal));
        var wrong = new List<string>();
        foreach (var entry in keys.Entries)
        {
            var resolution = map.Resolve(entry.OriginalKey);
            if (entry.Op == "ignore")
            {
                if (resolution.Kind != SingleFileKeyKind.Ignored) wrong.Add($"{entry.OriginalKey}: {resolution.Kind}, expected ignored");
                continue;
            }
            if (resolution.Mapping is not { } mapping)
            {
                wrong.Add($"{entry.OriginalKey}: {resolution.Kind}, expected {entry.Op} to {string.Join(", ", entry.To)}");
                continue;
            }
            var expectedTo = entry.To.Select(t => t!).ToArray();
            var actualTo = mapping.DiffusersKeys.Select(k => $"{mapping.Component}/{k}").ToArray();
            if (!expectedTo.SequenceEqual(actualTo)) wrong.Add($"{entry.OriginalKey}: to {string.Join(", ", actualTo)}, expected {string.Join(", ", expectedTo)}");
            if (mapping.Op != SingleFileKeyFile.ParseOp(entry.Op)) wrong.Add($"{entry.OriginalKey}: op {mapping.Op}, expected {entry.Op}");
            long[] shape = mapping.DiffusersShape(entry.Shape);
            long[] expectedShape = entry.ToShape ?? (mapping.Op == SingleFileOp.SplitDim0 ? [entry.Shape[0] / 3, .. entry.Shape[1..]] : entry.Shape);
            if (!shape.SequenceEqual(expectedShape)) wrong.Add($"{entry.OriginalKey}: shape [{string.Join(",", shape)}], expected [{string.Join(",", expectedShape)}]");
            foreach (string k in mapping.DiffusersKeys)
            {
                if (!produced[mapping.Component].TryAdd(k, shape)) wrong.Add($"{entry.OriginalKey}: {mapping.Component}/{k} produced twice");
            }
        }
        Assert.Empty(wrong);

        // Nothing left over on the diffusers side: the produced keys are exactly the models' state dicts.
        foreach (string component in SingleFileComponents.All)
        {
            var expected = expectedShapes(component)!;
            Assert.Empty(expected.Keys.Except(produced[component].Keys).Order());
            Assert.Empty(produced[component].Keys.Except(expected.Keys).Order());
            Assert.Empty(expected.Where(p => !p.Value.SequenceEqual(produced[component][p.Key])).Select(p => p.Key));
        }
    }

    [Theory]
    [MemberData(nameof(KeyMaps))]
    public void OnlyInOriginalKeysAreRecognised(string id)
    {
        var (keys, configRoot, _) = Load(id);
        var map = SingleFileKeyMap.Create(keys.Family, Architecture(configRoot));
        var notIgnored = keys.OnlyInOriginalKeys.Select(map.Resolve).Where(r => r.Kind is not (SingleFileKeyKind.Ignored or SingleFileKeyKind.Ema)).Select(r => r.OriginalKey);
        Assert.Empty(notIgnored);
        if (keys.MentionsEmaPattern)
        {
            var unetKeys = keys.Entries.Where(e => e.OriginalKey.StartsWith("model.diffusion_model.", StringComparison.Ordinal)).ToArray();
            Assert.NotEmpty(unetKeys);
            Assert.All(unetKeys, e => Assert.Equal(SingleFileKeyKind.Ema, map.Resolve(SingleFileKeyMap.EmaKeyOf(e.OriginalKey)).Kind));
            Assert.Equal("model_ema.diffusion_modelinput_blocks00weight", SingleFileKeyMap.EmaKeyOf("model.diffusion_model.input_blocks.0.0.weight"));
        }
        // A key that is neither mapped nor known stays unknown.
        Assert.Equal(SingleFileKeyKind.Unknown, map.Resolve("model.diffusion_model.input_blocks.999.0.in_layers.0.weight").Kind);
        Assert.Equal(SingleFileKeyKind.Unknown, map.Resolve("model.diffusion_model.input_blocks.1.0.in_layers.0.extra").Kind);
    }

    [Theory]
    [MemberData(nameof(KeyMaps))]
    public void EveryDiffusersKeyMapsBack(string id)
    {
        var (keys, configRoot, _) = Load(id);
        var map = SingleFileKeyMap.Create(keys.Family, Architecture(configRoot));
        var wrong = new List<string>();
        foreach (var entry in keys.Entries.Where(e => e.Op != "ignore"))
        {
            for (int i = 0; i < entry.To.Length; i++)
            {
                string full = entry.To[i]!;
                int slash = full.IndexOf('/');
                var mapping = map.ToOriginal(full[..slash], full[(slash + 1)..], out int part, out int parts);
                if (mapping is null || mapping.OriginalKey != entry.OriginalKey || part != i || parts != entry.To.Length)
                {
                    wrong.Add($"{full}: {mapping?.OriginalKey ?? "none"} part {part}/{parts}, expected {entry.OriginalKey} part {i}/{entry.To.Length}");
                    continue;
                }
                long[] toShape = entry.ToShape ?? (mapping.Op == SingleFileOp.SplitDim0 ? [entry.Shape[0] / 3, .. entry.Shape[1..]] : entry.Shape);
                if (!mapping.OriginalShape(toShape).SequenceEqual(entry.Shape)) wrong.Add($"{full}: original shape differs");
            }
        }
        Assert.Empty(wrong);
    }
}
