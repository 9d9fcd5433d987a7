using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>Concepts made elsewhere — a diffusers textual-inversion file with an optional fine-tuned <c>unet/</c>, no
/// attndreambooth.json — load with the token taken from the file, or fail clearly leaving the pipeline as it was.</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class ConceptImportTests(TrainedConcepts concepts)
{
    /// <summary>The saved concept without our metadata: what diffusers' textual inversion + DreamBooth scripts leave.</summary>
    private string ForeignCopy(TempDirectory temp, bool withUNet = true)
    {
        string folder = temp.File("foreign");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(concepts.Sd1, LearnedEmbeddings.DiffusersFileName), Path.Combine(folder, LearnedEmbeddings.DiffusersFileName));
        if (withUNet)
        {
            Directory.CreateDirectory(Path.Combine(folder, "unet"));
            foreach (string file in Directory.GetFiles(Path.Combine(concepts.Sd1, "unet"))) File.Copy(file, Path.Combine(folder, "unet", Path.GetFileName(file)));
        }
        return folder;
    }

    private static void AssertUntouched(PersonalizationPipeline pipeline, int vocabulary, Dictionary<string, torch.Tensor> unet)
    {
        Assert.Null(pipeline.Concept);
        Assert.Equal(vocabulary, pipeline.Components.Tokenizer.VocabularySize);
        foreach (var (name, value) in pipeline.Components.UNet.state_dict()) Assert.True(TinyPipeline.BitEqual(unet[name], value), name);
    }

    [Fact]
    public async Task ADiffusersTextualInversionFolderWithAUNetLoadsLikeTheSavedConcept()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string foreign = ForeignCopy(temp);
        byte[] expected;
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using (pipeline) expected = await TrainedConcepts.RenderAsync(pipeline, "a photo of a {}");

        using var other = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var import = ConceptImport.FromFolder(foreign);
        Assert.Equal(Path.Combine(foreign, "unet"), import.UNetFolder);
        var imported = await PersonalizedModel.ImportAsync(import with { Category = "dog" }, other);
        Assert.Equal(model.Token, imported.Token);
        Assert.Equal("dog", imported.Category);
        Assert.Equal(Path.Combine(foreign, LearnedEmbeddings.DiffusersFileName), imported.ImportedFrom);
        Assert.Equal(expected, await TrainedConcepts.RenderAsync(other, "a photo of a {}"));

        // Imported concepts export like trained ones.
        var exported = await imported.ExportAsync(temp.File("export"));
        Assert.Equal(model.Token, exported.TriggerWord);
    }

    [Fact]
    public async Task TheTokenComesFromTheFileUnlessRenamedAndCategoryIsOptional()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string foreign = ForeignCopy(temp, withUNet: false);
        using var first = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var imported = await PersonalizedModel.ImportAsync(ConceptImport.FromFolder(foreign), first);
        Assert.Equal(Concept.DefaultToken, imported.Token);
        Assert.Equal("a new_concept_v0 on the beach", first.ExpandPrompt("a {} on the beach"));
        var expected = await TrainedConcepts.RenderAsync(first, "a photo of a {} dog");

        // A new name is a new token at the same id: the prompts encode identically.
        using var second = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var renamed = await PersonalizedModel.ImportAsync(new ConceptImport(Path.Combine(foreign, LearnedEmbeddings.DiffusersFileName)) { Token = "my_dog" }, second);
        Assert.Equal("my_dog", renamed.Token);
        Assert.Equal(expected, await TrainedConcepts.RenderAsync(second, "a photo of a my_dog dog"));
    }

    [Fact]
    public async Task AnEmbeddingOfAnotherWidthIsRefusedNamingBothWidths()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string file = temp.File("wide.safetensors");
        SafetensorsWriter.Write(file, new Dictionary<string, torch.Tensor> { ["<wide>"] = torch.ones(1, 48) });
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd2).Build();
        int vocabulary = pipeline.Components.Tokenizer.VocabularySize;
        var unet = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var error = await Assert.ThrowsAsync<InvalidWeightsException>(() =>
            PersonalizedModel.ImportAsync(new ConceptImport(file) { UNetFolder = Path.Combine(concepts.Sd2, "unet") }, pipeline));
        Assert.Equal(48, error.Width);
        Assert.Equal(32, error.ExpectedWidth);
        Assert.Contains(file, error.Message);
        AssertUntouched(pipeline, vocabulary, unet);
    }

    [Fact]
    public async Task AUNetOfAnotherBaseModelIsRefusedBeforeAnythingChanges()
    {
        using var temp = TestPaths.CreateTempDirectory();
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        int vocabulary = pipeline.Components.Tokenizer.VocabularySize;
        var unet = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var error = await Assert.ThrowsAsync<ModelConfigException>(() => PersonalizedModel.ImportAsync(
            new ConceptImport(Path.Combine(concepts.Sd1, LearnedEmbeddings.DiffusersFileName)) { UNetFolder = Path.Combine(concepts.Sd2, "unet") }, pipeline));
        Assert.Contains("another base model", error.Message);
        AssertUntouched(pipeline, vocabulary, unet);
    }

    [Fact]
    public async Task AFileWithSeveralEmbeddingsIsRefused()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string file = temp.File("two.safetensors");
        SafetensorsWriter.Write(file, new Dictionary<string, torch.Tensor> { ["<a>"] = torch.ones(1, 32), ["<b>"] = torch.zeros(1, 32) });
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        int vocabulary = pipeline.Components.Tokenizer.VocabularySize;
        var unet = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var error = await Assert.ThrowsAsync<InvalidWeightsException>(() => PersonalizedModel.ImportAsync(new ConceptImport(file), pipeline));
        Assert.Contains("holds 2 embeddings (<a>, <b>)", error.Message);
        AssertUntouched(pipeline, vocabulary, unet);
    }

    [Fact]
    public async Task AMultiVectorA1111EmbeddingExpandsToAllItsTokensInPrompts()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string file = A1111EmbeddingFile.Write(temp.Path, "style", torch.randn(3, 32, generator: new torch.Generator(5)));
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var imported = await PersonalizedModel.ImportAsync(new ConceptImport(file), pipeline);
        Assert.Equal("style", imported.Token);
        Assert.Equal("a house in style style_1 style_2", pipeline.ExpandPrompt("a house in {}"));
        var ids = pipeline.Components.Tokenizer.EncodeWithoutSpecialTokens(pipeline.ExpandPrompt("style"));
        Assert.Equal(pipeline.ConceptEmbedding!.TokenIds, ids);
        Assert.NotEqual(await TrainedConcepts.RenderAsync(pipeline, "a house in style"), await TrainedConcepts.RenderAsync(pipeline, "a house in"));
    }

    [Fact]
    public void AFolderWithOnlyAPickleIsRefusedAsUnsafe()
    {
        using var temp = TestPaths.CreateTempDirectory();
        File.WriteAllBytes(temp.File("learned_embeds.bin"), [0x80, 0x02]);
        Assert.Throws<InvalidWeightsException>(() => ConceptImport.FromFolder(temp.Path));
        Directory.CreateDirectory(temp.File("empty"));
        var error = Assert.Throws<ModelConfigException>(() => ConceptImport.FromFolder(temp.File("empty")));
        Assert.Contains("holds no embedding file", error.Message);
    }
}
