using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The single-file export: the original (LDM) layout A1111 and ComfyUI load, with SD 2.x's text_projection,
/// plus the embedding named after the trigger word; both read back into the same model.</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class SingleFileExportTests(TrainedConcepts concepts)
{
    private static string SingleFileOf(string caseName) => Path.Combine(TestPaths.FixturesRoot, caseName, "single-file", "model.safetensors");

    [Theory]
    [InlineData("sd1")]
    [InlineData("sd2")]
    public async Task TheCheckpointAndEmbeddingReproduceTheConceptsImagesBitForBit(string family)
    {
        string baseModel = family == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2;
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(baseModel, family == "sd1" ? concepts.Sd1 : concepts.Sd2);
        byte[] expected;
        ConceptExportResult result;
        using (pipeline)
        {
            result = await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.SingleFile });
            expected = await TrainedConcepts.RenderAsync(pipeline, $"a photo of a {model.Token} dog");
        }
        Assert.Equal(new[] { $"{model.Token}-checkpoint.safetensors", $"{model.Token}.safetensors", "README.txt", "attndreambooth_export.json" }.Order(StringComparer.Ordinal),
            result.Files.Keys.Order(StringComparer.Ordinal));

        using var loaded = PersonalizationPipeline.FromSingleFile(Path.Combine(export, $"{model.Token}-checkpoint.safetensors"), baseModel).Build();
        var imported = await PersonalizedModel.ImportAsync(new ConceptImport(Path.Combine(export, $"{model.Token}.safetensors")) { Category = "dog" }, loaded);
        Assert.Equal(model.Token, imported.Token);
        Assert.Equal(expected, await TrainedConcepts.RenderAsync(loaded, "a photo of a {}"));
    }

    [Fact]
    public async Task AnExistingTokensRowIsWrittenIntoTheCheckpointItself()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1Existing);
        byte[] expected;
        using (pipeline)
        {
            await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.SingleFile });
            expected = await TrainedConcepts.RenderAsync(pipeline, "a photo of a sks dog");
        }
        // Without the embedding file: "sks" is a vocabulary word whose table row now is the learned one.
        using var loaded = PersonalizationPipeline.FromSingleFile(Path.Combine(export, "sks-checkpoint.safetensors"), TestPaths.TinySd1).Build();
        Assert.Equal(expected, await TrainedConcepts.RenderAsync(loaded, "a photo of a sks dog"));
    }

    [Fact]
    public async Task Sd2FilesHoldTheKeysOfTheReferenceFileIncludingTextProjection()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd2, concepts.Sd2);
        using (pipeline) await model.ExportAsync(temp.File("export"), new ConceptExportOptions { Format = ConceptExportFormat.SingleFile });

        using var exported = SafetensorsFile.Open(Path.Combine(temp.File("export"), $"{model.Token}-checkpoint.safetensors"));
        using var reference = SafetensorsFile.Open(SingleFileOf("tiny-sd2"));
        // The reference file (made by diffusers' conversion script plus the text projection) has exactly these keys and shapes.
        Assert.Equal(reference.Names.Order(StringComparer.Ordinal), exported.Names.Order(StringComparer.Ordinal));
        foreach (string name in reference.Names) Assert.Equal(reference.Entries[name].Shape, exported.Entries[name].Shape);
        var hidden = ClipTextConfig.Load(Path.Combine(TestPaths.TinySd2, "text_encoder", "config.json")).HiddenSize;
        Assert.Equal([hidden, hidden], exported.Entries[SingleFileExporter.TextProjectionKey].Shape);
        using var projection = exported.ReadTensor(SingleFileExporter.TextProjectionKey);
        Assert.True(projection.eq(torch.eye(hidden)).all().item<bool>(), "a diffusers base has no projection: the identity is written");
    }

    [Fact]
    public async Task Sd1FilesHaveNoTextProjection()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using (pipeline) await model.ExportAsync(temp.File("export"), new ConceptExportOptions { Format = ConceptExportFormat.SingleFile });
        using var exported = SafetensorsFile.Open(Path.Combine(temp.File("export"), $"{model.Token}-checkpoint.safetensors"));
        using var reference = SafetensorsFile.Open(SingleFileOf("tiny-sd1"));
        Assert.Equal(reference.Names.Order(StringComparer.Ordinal), exported.Names.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(exported.Names, n => n.EndsWith("text_projection", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ASingleFileBaseKeepsItsOwnTextProjection()
    {
        using var temp = TestPaths.CreateTempDirectory();
        using var pipeline = PersonalizationPipeline.FromSingleFile(SingleFileOf("tiny-sd2"), TestPaths.TinySd2).Build();
        var model = await PersonalizedModel.LoadAsync(concepts.Sd2, pipeline);
        var result = await model.ExportAsync(temp.File("export"), new ConceptExportOptions { Format = ConceptExportFormat.SingleFile, WeightsDType = torch.ScalarType.Float16 });
        Assert.Equal("model.safetensors", result.BaseModelName);
        // The fingerprint covers exactly the one weight file, by its name.
        string fileHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(SingleFileOf("tiny-sd2"))));
        Assert.Equal("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{fileHash}  model.safetensors\n"))),
            result.BaseModelFingerprint);

        using var exported = SafetensorsFile.Open(Path.Combine(temp.File("export"), $"{model.Token}-checkpoint.safetensors"));
        using var original = SafetensorsFile.Open(SingleFileOf("tiny-sd2"));
        using var own = original.ReadTensor(SingleFileExporter.TextProjectionKey).to_type(torch.float16);
        using var written = exported.ReadTensor(SingleFileExporter.TextProjectionKey);
        Assert.True(TinyPipeline.BitEqual(own, written), "the base file's own projection, converted like every other tensor");
        Assert.All(exported.Entries.Values, e => Assert.Equal(torch.ScalarType.Float16, e.ScalarType));
    }

    /// <summary>The identity projection's shape rule gives what real SD 2.x single files hold (OpenCLIP ViT-H: [1024, 1024]),
    /// and SD 1.5 files have no such key.</summary>
    [Theory]
    [InlineData("stable-diffusion-2-1", "stable-diffusion-2-1")]
    [InlineData("stable-diffusion-2-1-base", "stable-diffusion-2-1")]
    [InlineData("stable-diffusion-v1-5", "stable-diffusion-v1-5")]
    public void TheTextProjectionShapeIsTheRealFilesOne(string variant, string keyFileVariant)
    {
        string folder = Path.Combine(FixtureRoots.RealSize, variant);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureRoots.RealSize, keyFileVariant, "single_file_keys.json")))!;
        var entry = manifest["only_in_original_files"]!.AsArray()
            .FirstOrDefault(e => e!["keys"] is JsonArray keys && keys.Any(k => k!.GetValue<string>() == SingleFileExporter.TextProjectionKey));
        var family = manifest["family"]!.GetValue<string>() == "sd2" ? StableDiffusionFamily.Sd2 : StableDiffusionFamily.Sd1;
        if (family == StableDiffusionFamily.Sd1)
        {
            Assert.Null(entry);
            return;
        }
        var shape = entry!["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
        var keyMap = SingleFileKeyMap.Create(family, SingleFileArchitecture.FromFolder(folder));
        Assert.Equal(shape, SingleFileExporter.IdentityTextProjectionShape(keyMap));
        Assert.Equal(SingleFileKeyKind.Ignored, keyMap.Resolve(SingleFileExporter.TextProjectionKey).Kind);
    }
}
