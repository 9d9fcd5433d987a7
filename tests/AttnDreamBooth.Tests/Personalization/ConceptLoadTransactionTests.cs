using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>Issue "A concept loads exactly or not at all": every failing load leaves the pipeline bit-identical.</summary>
public sealed class ConceptLoadTransactionTests(SavedConceptFixture saved) : IClassFixture<SavedConceptFixture>
{
    private sealed record PipelineState(Dictionary<string, torch.Tensor> UNet, Dictionary<string, torch.Tensor> TextEncoder, Dictionary<string, torch.Tensor> Vae, int VocabularySize);

    private static PipelineState Capture(PersonalizationPipeline p) => new(
        TinyPipeline.Snapshot(p.Components.UNet), TinyPipeline.Snapshot(p.Components.TextEncoder), TinyPipeline.Snapshot(p.Components.Vae),
        p.Components.Tokenizer.VocabularySize);

    private static void AssertUnchanged(PipelineState before, PersonalizationPipeline p)
    {
        Assert.Null(p.Concept);
        Assert.Null(p.ConceptEmbedding);
        Assert.Equal(before.VocabularySize, p.Components.Tokenizer.VocabularySize);
        foreach (var (name, module, snapshot) in new (string, torch.nn.Module, Dictionary<string, torch.Tensor>)[]
                 { ("unet", p.Components.UNet, before.UNet), ("text_encoder", p.Components.TextEncoder, before.TextEncoder), ("vae", p.Components.Vae, before.Vae) })
        {
            var now = module.state_dict();
            Assert.Equal(snapshot.Count, now.Count);
            foreach (var (key, value) in snapshot)
                Assert.True(TinyPipeline.BitEqual(value, now[key]), $"{name}.{key} changed by a failed load");
        }
    }

    /// <summary>Runs a load that must fail with <typeparamref name="T"/>, checks the pipeline is bit-identical, then
    /// loads the intact concept onto the same pipeline (it must still be usable).</summary>
    private async Task<T> AssertAtomicFailure<T>(Action<string> breakCopy, PersonalizedModelLoadOptions? options = null) where T : Exception
    {
        using var temp = TestPaths.CreateTempDirectory();
        string broken = saved.CopyTo(temp, "broken");
        breakCopy(broken);
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var before = Capture(pipeline);
        var error = await Assert.ThrowsAsync<T>(() => PersonalizedModel.LoadAsync(broken, pipeline, options ?? PersonalizedModelLoadOptions.Default));
        AssertUnchanged(before, pipeline);

        var loaded = await PersonalizedModel.LoadAsync(saved.Folder, pipeline);
        Assert.Equal(Concept.DefaultToken, loaded.Token);
        Assert.False(TinyPipeline.BitEqual(before.UNet.First(p => p.Key.Contains("attn2.to_k")).Value,
            pipeline.Components.UNet.state_dict()[before.UNet.First(p => p.Key.Contains("attn2.to_k")).Key]), "the intact concept's U-Net must differ from the base");
        return error;
    }

    [Fact]
    public async Task MissingEmbeddingsLeaveThePipelineUntouched()
    {
        var error = await AssertAtomicFailure<ModelConfigException>(f => File.Delete(Path.Combine(f, PersonalizedModel.EmbeddingFile)));
        Assert.EndsWith(PersonalizedModel.EmbeddingFile, error.FilePath);
    }

    [Fact]
    public async Task AnEmbeddingOfTheWrongWidthLeavesThePipelineUntouched()
    {
        var error = await AssertAtomicFailure<InvalidWeightsException>(f =>
            SavedConceptFixture.Rewrite(Path.Combine(f, PersonalizedModel.EmbeddingFile), t =>
            {
                var key = t.Keys.Single();
                t[key] = torch.zeros(1, 16);
            }));
        Assert.Equal(16, error.Width);
    }

    [Fact]
    public async Task APickleInPlaceOfTheEmbeddingsLeavesThePipelineUntouched()
    {
        // The start of a torch.save pickle (protocol 2): not a safetensors header.
        await AssertAtomicFailure<InvalidWeightsException>(f =>
            File.WriteAllBytes(Path.Combine(f, PersonalizedModel.EmbeddingFile), [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]));
    }

    [Fact]
    public async Task AMismatchedUNetLeavesThePipelineUntouched()
    {
        var error = await AssertAtomicFailure<InvalidWeightsException>(f =>
            SavedConceptFixture.Rewrite(Path.Combine(f, "unet", "diffusion_pytorch_model.safetensors"), t =>
            {
                var key = t.Keys.First(k => k.EndsWith("attn2.to_k.weight", StringComparison.Ordinal));
                t[key] = torch.zeros(t[key].shape[0], t[key].shape[1] + 1);
            }));
        Assert.Single(error.Report!.Mismatched);
    }

    [Fact]
    public async Task AUNetConfigOfAnotherModelIsRefusedNamingTheKey()
    {
        var error = await AssertAtomicFailure<ModelConfigException>(f =>
        {
            string path = Path.Combine(f, "unet", "config.json");
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            json["upcast_attention"] = true;
            File.WriteAllText(path, json.ToJsonString());
        });
        Assert.Equal("upcast_attention", error.Key);
    }

    [Fact]
    public async Task NonFiniteUNetWeightsAreRefusedNamingTheTensor()
    {
        string? poisoned = null;
        var error = await AssertAtomicFailure<InvalidWeightsException>(f =>
            SavedConceptFixture.Rewrite(Path.Combine(f, "unet", "diffusion_pytorch_model.safetensors"), t =>
            {
                poisoned = t.Keys.Order(StringComparer.Ordinal).Last(k => k.EndsWith(".weight", StringComparison.Ordinal));
                t[poisoned] = t[poisoned].clone();
                t[poisoned].view(-1)[0] = torch.tensor(float.PositiveInfinity);
            }));
        Assert.Equal([poisoned!], error.TensorNames);
    }

    [Fact]
    public async Task ANonFiniteEmbeddingIsRefused()
    {
        var error = await AssertAtomicFailure<InvalidWeightsException>(f =>
            SavedConceptFixture.Rewrite(Path.Combine(f, PersonalizedModel.EmbeddingFile), t =>
            {
                var key = t.Keys.Single();
                t[key] = t[key].clone();
                t[key][0, 3] = torch.tensor(float.NaN);
            }));
        Assert.Equal([Concept.DefaultToken], error.TensorNames);
    }

    [Fact]
    public async Task AnIntegerEmbeddingIsRefused()
    {
        var error = await AssertAtomicFailure<InvalidWeightsException>(f =>
            SavedConceptFixture.Rewrite(Path.Combine(f, PersonalizedModel.EmbeddingFile), t =>
            {
                var key = t.Keys.Single();
                t[key] = t[key].to_type(torch.ScalarType.Int64);
            }));
        Assert.Contains("I64", error.Message);
    }

    [Fact]
    public async Task TurningTheFiniteCheckOffLoadsNaNAndGenerationThenRaisesInsteadOfReturningABlackImage()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string folder = saved.CopyTo(temp);
        SavedConceptFixture.Rewrite(Path.Combine(folder, PersonalizedModel.EmbeddingFile), t =>
        {
            var key = t.Keys.Single();
            t[key] = torch.full(t[key].shape, Kept(float.NaN));
        });
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        await PersonalizedModel.LoadAsync(folder, pipeline, new PersonalizedModelLoadOptions { CheckFiniteWeights = false });
        var error = await Assert.ThrowsAsync<NonFiniteValuesException>(() => pipeline.GenerateAsync("a {} on the beach", new GenerationOptions { Steps = 2, Seed = 1 }));
        Assert.Equal(1, error.Step);
        // A prompt without the concept is unaffected.
        var images = await pipeline.GenerateAsync("a dog on the beach", new GenerationOptions { Steps = 2, Seed = 1 });
        Assert.Single(images);
    }
}
