using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Text;
using AttnDreamBooth.Tests.IO;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The diffusers export is a pipeline folder that loads as a plain model in which the token is a word.</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class DiffusersExportTests(TrainedConcepts concepts)
{
    public static TheoryData<string> Families() => new() { "sd1", "sd2", "sd1-sks" };

    private (string Base, string Concept) Of(string family) => family switch
    {
        "sd1" => (TestPaths.TinySd1, concepts.Sd1),
        "sd2" => (TestPaths.TinySd2, concepts.Sd2),
        _ => (TestPaths.TinySd1, concepts.Sd1Existing),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public async Task TheExportedFolderGeneratesTheConceptsImagesBitForBitAsAPlainModel(string family)
    {
        var (baseModel, conceptFolder) = Of(family);
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(baseModel, conceptFolder);
        byte[] expected;
        using (pipeline)
        {
            var result = await model.ExportAsync(export);
            Assert.Equal(model.Token, result.TriggerWord);
            expected = await TrainedConcepts.RenderAsync(pipeline, $"a photo of a {model.Token} dog");
            Assert.NotEqual(expected, await TrainedConcepts.RenderAsync(pipeline, "a photo of a dog"));
        }

        // No concept is loaded: the token is an ordinary word of the exported tokenizer and text encoder.
        using var plain = PersonalizationPipeline.FromPretrained(export).Build();
        Assert.Null(plain.Concept);
        Assert.Equal(expected, await TrainedConcepts.RenderAsync(plain, $"a photo of a {model.Token} dog"));
    }

    [Fact]
    public async Task TheLayoutIsWhatFromPretrainedReads()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using var learned = model.EmbeddingVector();
        using (pipeline) await model.ExportAsync(export);

        // model_index.json: every non-null component is a folder with its config and weights under the names
        // diffusers / transformers look for.
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(export, "model_index.json")))!.AsObject();
        Assert.Equal("StableDiffusionPipeline", index["_class_name"]!.GetValue<string>());
        var expectedFiles = new Dictionary<string, string[]>
        {
            ["unet"] = ["config.json", "diffusion_pytorch_model.safetensors"],
            ["vae"] = ["config.json", "diffusion_pytorch_model.safetensors"],
            ["text_encoder"] = ["config.json", "model.safetensors"],
            ["tokenizer"] = ["added_tokens.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"],
            ["scheduler"] = ["scheduler_config.json"],
        };
        foreach (var (name, value) in index)
        {
            if (name.StartsWith('_') || value is not JsonArray pair || pair[0] is null) continue;
            Assert.True(expectedFiles.ContainsKey(name), $"unexpected component {name}");
            Assert.Equal(expectedFiles[name], Directory.GetFiles(Path.Combine(export, name)).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        Assert.Equal(expectedFiles.Keys.Order(), index.Where(p => p.Value is JsonArray { Count: 2 } a && a[0] is not null).Select(p => p.Key).Order());

        // The tokenizer is the base one byte for byte, plus the added token.
        foreach (string file in new[] { "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(TestPaths.TinySd1, "tokenizer", file)), File.ReadAllBytes(Path.Combine(export, "tokenizer", file)));

        // The token: added after the base vocabulary, the table grown to hold it, the config saying so.
        var added = JsonNode.Parse(File.ReadAllText(Path.Combine(export, "tokenizer", "added_tokens.json")))!.AsObject();
        var baseTokenizer = ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"));
        Assert.Equal(baseTokenizer.VocabularySize, added[model.Token]!.GetValue<int>());
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(export, "text_encoder", "config.json")))!.AsObject();
        using (var weights = SafetensorsFile.Open(Path.Combine(export, "text_encoder", "model.safetensors")))
        {
            var table = weights.Entries["text_model.embeddings.token_embedding.weight"].Shape;
            Assert.Equal(baseTokenizer.VocabularySize + 1, table[0]);
            Assert.Equal(table[0], config["vocab_size"]!.GetValue<long>());
            Assert.DoesNotContain(ClipTextModel.PositionIdsKey, weights.Names);
            using var row = weights.ReadTensor("text_model.embeddings.token_embedding.weight")[baseTokenizer.VocabularySize];
            Assert.True(TinyPipeline.BitEqual(learned, row));
        }

        // The U-Net is the fine-tuned one.
        using (var unet = SafetensorsFile.Open(Path.Combine(export, "unet", "diffusion_pytorch_model.safetensors")))
        using (var saved = SafetensorsFile.Open(Path.Combine(concepts.Sd1, "unet", "diffusion_pytorch_model.safetensors")))
        {
            Assert.Equal(saved.Names.Order(StringComparer.Ordinal), unet.Names.Order(StringComparer.Ordinal));
            foreach (string name in saved.Names) Assert.True(TinyPipeline.BitEqual(saved.ReadTensor(name), unet.ReadTensor(name)), name);
        }

        // Portable: no file names a local path; the metadata names the base by folder name and weight hashes.
        foreach (string file in Directory.GetFiles(export, "*", SearchOption.AllDirectories).Where(f => f.EndsWith(".json") || f.EndsWith(".txt")))
        {
            string text = File.ReadAllText(file);
            Assert.DoesNotContain(TestPaths.RepoRoot, text);
            Assert.DoesNotContain(temp.Path, text);
        }
        string metadataText = File.ReadAllText(Path.Combine(export, "attndreambooth_export.json"));
        SnakeCaseJson.AssertKeys(metadataText);
        var metadata = JsonNode.Parse(metadataText)!.AsObject();
        Assert.Equal("diffusers", metadata["format"]!.GetValue<string>());
        Assert.Contains(metadata["token_kind"]!.GetValue<string>(), new[] { "new", "existing" });
        Assert.Equal("float32", metadata["weights_dtype"]!.GetValue<string>());
        Assert.Equal("pipeline", metadata["base_model"]!["name"]!.GetValue<string>());
        var files = metadata["base_model"]!["files"]!.AsArray().Select(f => f!["path"]!.GetValue<string>()).ToArray();
        Assert.Equal(["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"], files);
        string unetHash = metadata["base_model"]!["files"]![1]!["sha256"]!.GetValue<string>();
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(TestPaths.TinySd1, "unet", "diffusion_pytorch_model.safetensors")))), unetHash);

        string readme = File.ReadAllText(Path.Combine(export, "README.txt"));
        Assert.Contains($"Trigger word:      {model.Token}", readme);
        Assert.Contains($"\"a photo of a {model.Token} dog\"", readme);
        Assert.Contains("StableDiffusionPipeline.from_pretrained", readme);
    }

    [Fact]
    public async Task LocalPathsInTheBaseConfigsAreNotCarriedIntoTheExport()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string baseCopy = temp.File("base");
        TestPaths.CopyDirectory(TestPaths.TinySd1, baseCopy);
        foreach (var (file, key) in new[] { ("text_encoder/config.json", "_name_or_path"), ("tokenizer/tokenizer_config.json", "name_or_path") })
        {
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(baseCopy, file)))!.AsObject();
            json[key] = "/home/someone/models/sd15";
            File.WriteAllText(Path.Combine(baseCopy, file), json.ToJsonString());
        }
        using var pipeline = PersonalizationPipeline.FromPretrained(baseCopy).Build();
        var model = await PersonalizedModel.LoadAsync(concepts.Sd1, pipeline);
        await model.ExportAsync(temp.File("export"));
        var textConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(temp.File("export"), "text_encoder", "config.json")))!.AsObject();
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(temp.File("export"), "tokenizer", "tokenizer_config.json")))!.AsObject();
        Assert.False(textConfig.ContainsKey("_name_or_path"));
        Assert.False(tokenizerConfig.ContainsKey("name_or_path"));
        Assert.Equal("quick_gelu", textConfig["hidden_act"]!.GetValue<string>());
        Assert.Equal("CLIPTokenizer", tokenizerConfig["tokenizer_class"]!.GetValue<string>());
    }

    [Fact]
    public async Task Float16WeightsAreWrittenAsFloat16AndGiveNearlyTheSameImages()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd2, concepts.Sd2);
        byte[] expected;
        using (pipeline)
        {
            await model.ExportAsync(export, new ConceptExportOptions { WeightsDType = TorchSharp.torch.ScalarType.Float16 });
            expected = await TrainedConcepts.RenderAsync(pipeline, $"a {model.Token} dog");
        }
        foreach (string component in new[] { "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors" })
        {
            using var file = SafetensorsFile.Open(Path.Combine(export, component));
            Assert.All(file.Entries.Values, e => Assert.Equal(TorchSharp.torch.ScalarType.Float16, e.ScalarType));
        }
        // Loaded back (as float32 modules), the weights differ by float16 rounding only.
        using var plain = PersonalizationPipeline.FromPretrained(export).Build();
        var actual = await TrainedConcepts.RenderAsync(plain, $"a {model.Token} dog");
        var diffs = expected.Zip(actual, (a, b) => Math.Abs(a - b)).ToArray();
        Console.WriteLine($"fp16 export: max {diffs.Max()}, mean {diffs.Average():F3}");
        Assert.True(diffs.Max() <= 3 && diffs.Average() <= 0.25, $"max {diffs.Max()}, mean {diffs.Average():F3} levels");
    }
}
