using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Tests.StableDiffusion;

/// <summary>The generation-only pipeline: the same images as the personalization pipeline's path, cancellation, typed
/// errors for bad arguments, and textual-inversion embeddings.</summary>
public sealed class StableDiffusionPipelineTests
{
    private static GenerationOptions Small => new() { Steps = 3, Width = 64, Height = 48, BatchSize = 2, Seed = 11, HeatmapTokens = ["dog"] };

    [Fact]
    public async Task GeneratesTheSameImagesAndHeatmapsAsThePersonalizationPipeline()
    {
        using var personalization = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        using var pipeline = StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1);
        foreach (var options in new[] { Small, Small with { Sampler = "ddim", Eta = 0.5, NegativePrompt = "blurry" }, Small with { GuidanceScale = 1 } })
        {
            var expected = await personalization.GenerateAsync("a photo of a dog", options);
            var actual = await pipeline.GenerateAsync("a photo of a dog", options);
            Assert.Equal(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i].Seed, actual[i].Seed);
                Assert.Equal(expected[i].Image.Pixels.ToArray(), actual[i].Image.Pixels.ToArray());
                Assert.Equal(expected[i].Heatmaps["dog"].Values, actual[i].Heatmaps["dog"].Values);
            }
        }
        // The synchronous call renders the same images.
        var sync = pipeline.Generate("a photo of a dog", Small);
        var async = await pipeline.GenerateAsync("a photo of a dog", Small);
        Assert.Equal(async[1].Image.Pixels.ToArray(), sync[1].Image.Pixels.ToArray());
    }

    [Fact]
    public async Task CancellationStopsBetweenStepsAndLeavesThePipelineUsable()
    {
        using var pipeline = StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1);
        using var before = new CancellationTokenSource();
        await before.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.GenerateAsync("a dog", Small, before.Token));

        using var during = new CancellationTokenSource();
        var steps = new List<int>();
        var options = Small with { Steps = 5, OnStep = s => { steps.Add(s.Step); if (s.Step == 2) during.Cancel(); } };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.GenerateAsync("a dog", options, during.Token));
        Assert.Equal([1, 2], steps);

        var images = await pipeline.GenerateAsync("a dog", Small);
        Assert.Equal(2, images.Count);
    }

    [Fact]
    public async Task BadArgumentsGiveTypedExceptions()
    {
        using var pipeline = StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1);
        await Assert.ThrowsAsync<ArgumentNullException>(() => pipeline.GenerateAsync(null!));
        var steps = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipeline.GenerateAsync("a dog", new GenerationOptions { Steps = 0 }));
        Assert.Equal(nameof(GenerationOptions.Steps), steps.ParamName);
        await Assert.ThrowsAsync<SchedulerException>(() => pipeline.GenerateAsync("a dog", new GenerationOptions { Sampler = "no-such-sampler" }));
        var size = Assert.Throws<ArgumentException>(() => pipeline.Generate("a dog", Small with { Width = 63 }));
        Assert.Contains("multiples of", size.Message);
        var heatmap = Assert.Throws<ArgumentException>(() => pipeline.Generate("a dog", Small with { HeatmapTokens = [""] }));
        Assert.Contains("tokenizes to nothing", heatmap.Message);
        Assert.Throws<ArgumentException>(() => pipeline.LoadTextualInversion(" "));

        Assert.Throws<ArgumentOutOfRangeException>(() => StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1, dtype: torch.ScalarType.Int32));
        Assert.Throws<InvalidOperationException>(() => StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1, dtype: torch.ScalarType.Float16));
        using var temp = TestPaths.CreateTempDirectory();
        var missing = Assert.Throws<ModelConfigException>(() => StableDiffusionPipeline.FromPretrained(temp.File("no-model")));
        Assert.Contains("no-model", missing.Message);

        pipeline.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pipeline.GenerateAsync("a dog"));
    }

    [Fact]
    public async Task ATextualInversionEmbeddingRendersAsTheImportedConcept()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string file = A1111EmbeddingFile.Write(temp.Path, "style", torch.randn(3, 32, generator: new torch.Generator(5)));
        var options = Small with { HeatmapTokens = ["style"] };

        using var personalization = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        await PersonalizedModel.ImportAsync(new ConceptImport(file), personalization);
        var expected = await personalization.GenerateAsync("a house in style", options);

        using var pipeline = StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1);
        Assert.Equal(["style", "style_1", "style_2"], pipeline.LoadTextualInversion(file));
        Assert.Equal("a house in style style_1 style_2", pipeline.ExpandPrompt("a house in style"));
        var actual = await pipeline.GenerateAsync("a house in style", options);
        Assert.Equal(expected[0].Image.Pixels.ToArray(), actual[0].Image.Pixels.ToArray());
        Assert.Equal(expected[0].Heatmaps["style"].Values, actual[0].Heatmaps["style"].Values);

        var again = Assert.Throws<InvalidOperationException>(() => pipeline.LoadTextualInversion(file));
        Assert.Contains("already holds", again.Message);
    }
}
