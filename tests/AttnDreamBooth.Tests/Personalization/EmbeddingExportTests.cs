using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The A1111/ComfyUI embedding: one <c>emb_params</c> tensor in a file named after the trigger word.</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class EmbeddingExportTests(TrainedConcepts concepts)
{
    [Fact]
    public async Task TheFileIsNamedAfterTheTokenAndHoldsTheLearnedRowAsEmbParams()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using var learned = model.EmbeddingVector();
        using (pipeline)
        {
            var result = await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.Embedding });
            Assert.Equal(new[] { $"{model.Token}.safetensors", "README.txt", "attndreambooth_export.json" }.Order(StringComparer.Ordinal), result.Files.Keys.Order(StringComparer.Ordinal));
        }
        string file = Path.Combine(export, $"{model.Token}.safetensors");
        using (var safetensors = SafetensorsFile.Open(file))
        {
            Assert.Equal([A1111EmbeddingFile.ParameterKey], safetensors.Names);
            Assert.Equal([1L, learned.shape[0]], safetensors.Entries[A1111EmbeddingFile.ParameterKey].Shape);
            Assert.Equal(TorchSharp.torch.ScalarType.Float32, safetensors.Entries[A1111EmbeddingFile.ParameterKey].ScalarType);
        }
        var read = LearnedEmbeddings.Read(file);
        Assert.Equal(model.Token, Assert.Single(read).Key);
        Assert.True(TinyPipeline.BitEqual(learned, read[0].Value[0]));
        Assert.Contains($"embeddings/; prompt: \"a photo of a {model.Token} dog\"", File.ReadAllText(Path.Combine(export, "README.txt")));
    }

    [Fact]
    public async Task ImportedWithTheConceptsUNetTheEmbeddingGivesTheSameImages()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd2, concepts.Sd2);
        byte[] expected;
        using (pipeline)
        {
            await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.Embedding, TriggerWord = "my-dog" });
            expected = await TrainedConcepts.RenderAsync(pipeline, "a photo of a {}");
        }
        Assert.True(File.Exists(Path.Combine(export, "my-dog.safetensors")));
        using var other = PersonalizationPipeline.FromPretrained(TestPaths.TinySd2).Build();
        var imported = await PersonalizedModel.ImportAsync(
            new ConceptImport(Path.Combine(export, "my-dog.safetensors")) { UNetFolder = Path.Combine(concepts.Sd2, "unet"), Category = "dog" }, other);
        Assert.Equal("my-dog", imported.Token);
        Assert.NotNull(imported.ImportedFrom);
        Assert.Equal(expected, await TrainedConcepts.RenderAsync(other, "a photo of a {}"));
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("<cat-toy>")]
    [InlineData(".hidden")]
    public async Task ATriggerWordThatCannotBeAPortableFileNameIsRefusedBeforeAnythingIsWritten(string trigger)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using (pipeline)
        {
            var error = await Assert.ThrowsAsync<ArgumentException>(() =>
                model.ExportAsync(temp.File("export"), new ConceptExportOptions { Format = ConceptExportFormat.Embedding, TriggerWord = trigger }));
            Assert.Contains($"'{trigger}'", error.Message);
            Assert.Contains("file name", error.Message);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.Path));
    }
}
