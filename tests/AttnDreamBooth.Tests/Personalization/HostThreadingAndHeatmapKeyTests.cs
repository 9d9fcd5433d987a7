using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The synchronous Train/Generate run on the caller's thread and equal the async calls; heatmaps asked for with
/// the prompt shorthand are stored under the identifier; a prompt without the token renders without a map; checkpoints
/// record the category.</summary>
public sealed class HostThreadingAndHeatmapKeyTests
{
    [Fact]
    public async Task SynchronousTrainAndGenerateRunOnTheCallersThreadAndMatchTheAsyncCalls()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options(dir.File("ckpt")));
        int caller = Environment.CurrentManagedThreadId;
        var progressThreads = new List<int>();
        var model = pipeline.Train(TinyPipeline.Dog(), new InlineProgress<TrainingProgress>(_ => progressThreads.Add(Environment.CurrentManagedThreadId)));
        Assert.Equal([caller], progressThreads.Distinct());
        Assert.Equal("dog", model.Category);

        // The checkpoint records the concept's category.
        var (checkpoint, _) = CheckpointFolder.LatestValid(dir.File("ckpt"));
        Assert.Equal("dog", CheckpointFolder.ReadState(checkpoint!).Category);

        var stepThreads = new List<int>();
        var options = new GenerationOptions { Steps = 2, Width = 64, Height = 64, Seed = 3, HeatmapTokens = ["{}"], OnStep = _ => stepThreads.Add(Environment.CurrentManagedThreadId) };
        var here = pipeline.Generate("a photo of {}", options);
        Assert.Equal([caller], stepThreads.Distinct());
        var pooled = await pipeline.GenerateAsync("a photo of {}", options with { OnStep = null });
        Assert.Equal(pooled[0].Image.Pixels.ToArray(), here[0].Image.Pixels.ToArray());

        // "{}" is stored under the identifier, so the overlay is found by the model's token.
        Assert.Equal([model.Token], here[0].Heatmaps.Keys);
        Assert.NotEmpty(here[0].EncodeHeatmapOverlayPng(model.Token));

        // A prompt without the token: images, and no map for it (the caller can say so).
        var withoutToken = pipeline.Generate("a dog in the snow", options with { OnStep = null, HeatmapTokens = [model.Token] });
        Assert.Single(withoutToken);
        Assert.Empty(withoutToken[0].Heatmaps);
    }

}
