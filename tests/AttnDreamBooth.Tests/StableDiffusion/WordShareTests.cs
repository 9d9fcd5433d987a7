using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.StableDiffusion;

public sealed class WordShareTests
{
    [Fact]
    public async Task TheWordsSharesAddUpToOnePerLayerResolution()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        string[] words = ["a", "red", "dog", "on", "the", "beach"];
        var options = new GenerationOptions { Steps = 3, Seed = 2, BatchSize = 2, HeatmapTokens = words, HeatmapResolution = 8 };
        var images = await pipeline.GenerateAsync(string.Join(' ', words), options);

        foreach (var image in images)
        {
            var shares = words.Select(w => image.Heatmaps[w].WordShares).ToArray();
            var keys = shares[0].Keys.ToArray();
            Assert.NotEmpty(keys);
            Assert.Equal(keys.OrderDescending(), keys);
            Assert.All(shares, s => Assert.Equal(keys, s.Keys));
            foreach (int h in keys)
            {
                Assert.All(shares, s => Assert.InRange(s[h], 0.0, 1.0));
                Assert.Equal(1.0, shares.Sum(s => s[h]), 1e-6);
            }
        }
        // The two images of the batch attend differently (their noise differs), so each has its own shares.
        Assert.NotEqual(images[0].Heatmaps["dog"].WordShares.Values, images[1].Heatmaps["dog"].WordShares.Values);
    }

    [Fact]
    public async Task AskingForTheSharesLeavesTheHeatmapsAsTheyWere()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var one = await pipeline.GenerateAsync("a red dog", new GenerationOptions { Steps = 2, Seed = 1, HeatmapTokens = ["dog"] });
        var many = await pipeline.GenerateAsync("a red dog", new GenerationOptions { Steps = 2, Seed = 1, HeatmapTokens = ["dog", "red", "a"] });
        // The map of a token does not depend on which other tokens are recorded with it (each map is normalised alone; the
        // reductions over differently shaped tensors round differently, by a few float32 ulps).
        var a = one[0].Heatmaps["dog"].Values;
        var b = many[0].Heatmaps["dog"].Values;
        Assert.All(a.Zip(b), p => Assert.Equal(p.First, p.Second, 1e-5f));
        var shares = one[0].Heatmaps["dog"].WordShares;
        Assert.Equal(shares.Keys, many[0].Heatmaps["dog"].WordShares.Keys);
        Assert.All(shares, s => Assert.Equal(s.Value, many[0].Heatmaps["dog"].WordShares[s.Key], 1e-12));
        Assert.Equal(one[0].Image.Pixels, many[0].Image.Pixels);
    }
}
