using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>Which prompts the quality measurement uses.</summary>
public sealed class ShapesModelQualityTests
{
    // A VAE this small reconstructs noise in milliseconds; only the prompts are under test here.
    private static AutoencoderKL TinyVae()
    {
        torch.manual_seed(5);
        return new AutoencoderKL(new AutoencoderKLConfig { BlockOutChannels = [8], NormNumGroups = 4, SampleSize = 64, MidBlockAddAttention = false });
    }

    // The first 200 held-out draws of the default world hold 177 distinct captions: before the fix, 23 prompts (46 of
    // the 400 generated images at 2 seeds) were counted twice.
    [Fact]
    public void EveryMeasuredPromptIsDistinctAndHeldOut()
    {
        using var vae = TinyVae();
        var world = ShapesWorld.Default;
        var report = ShapesModelQuality.MeasureReconstruction(vae, world, prompts: 200);

        Assert.Equal(200, report.Samples.Count);
        Assert.Equal(200, report.Samples.Select(s => s.Prompt).Distinct(StringComparer.Ordinal).Count());
        Assert.All(report.Samples, s => Assert.True(IsHeldOut(world, s), $"'{s.Prompt}' is not a held-out combination"));

        // The same prompts, in the same order, whatever the count asked for.
        var first = ShapesModelQuality.MeasureReconstruction(vae, world, prompts: 30);
        Assert.Equal(report.Samples.Take(30).Select(s => s.Prompt), first.Samples.Select(s => s.Prompt));
    }

    // A sample records no pattern, so a held-out pattern is read from the prompt's words.
    private static bool IsHeldOut(ShapesWorld world, QualitySample s)
    {
        static bool Fits(string? held, string actual) => held is null || held == actual;
        bool PatternFits(string? held) => held is null || s.Prompt.Split(' ').Contains(world.Patterns.Single(p => p.Name == held).Word);
        return world.HeldOut.Any(h => Fits(h.Shape, s.Shape) && Fits(h.Color, s.Color) && Fits(h.Background, s.Background)
            && Fits(h.Size, s.Size) && Fits(h.Position, s.Position) && PatternFits(h.Pattern));
    }

    // The development split must never show a held-out combination, or choosing settings on it would peek at the test.
    [Fact]
    public async Task TheSeenSplitBuildsDistinctPromptsFromCombinationsPretrainingSaw()
    {
        var world = ShapesWorld.Default;
        using var pipeline = PersonalizationPipeline.FromPretrained(Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd")).Build();
        var options = new GenerationOptions { Steps = 2, GuidanceScale = 3 };
        var seen = await ShapesModelQuality.MeasureAsync(pipeline, world, prompts: 40, seeds: 1, options, combinations: HeldOutPolicy.Exclude);
        var heldOut = await ShapesModelQuality.MeasureAsync(pipeline, world, prompts: 40, seeds: 1, options);

        Assert.Equal(HeldOutPolicy.Exclude, seen.Combinations);
        Assert.Equal(HeldOutPolicy.Only, heldOut.Combinations);
        Assert.Equal(3, seen.Options!.GuidanceScale);
        Assert.Equal(40, seen.Samples.Select(s => s.Prompt).Distinct(StringComparer.Ordinal).Count());
        Assert.All(seen.Samples, s => Assert.False(IsHeldOut(world, s), $"'{s.Prompt}' is a held-out combination"));
        Assert.All(heldOut.Samples, s => Assert.True(IsHeldOut(world, s), $"'{s.Prompt}' is not a held-out combination"));
        // The split spans the world: more than one shape and background, not a handful of repeated scenes.
        Assert.True(seen.Samples.Select(s => s.Shape).Distinct().Count() >= 4);
        Assert.True(seen.Samples.Select(s => s.Background).Distinct().Count() >= 4);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            ShapesModelQuality.MeasureAsync(pipeline, world, prompts: 1, seeds: 1, options, combinations: (HeldOutPolicy)7));
    }

    [Fact]
    public void AskingForMoreDistinctPromptsThanTheWorldHoldsIsRefused()
    {
        // One held-out triple leaves 4 patterns × 2 sizes × 5 positions = 40 distinct full captions.
        string json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "src", "AttnDreamBooth.Shapes", "world.json"));
        int start = json.IndexOf("\"heldOut\"", StringComparison.Ordinal);
        int end = json.IndexOf(']', start);
        var world = ShapesWorld.Parse(json[..start] + "\"heldOut\": [{ \"shape\": \"star\", \"color\": \"red\", \"background\": \"beach\" }" + json[end..]);
        using var vae = TinyVae();

        Assert.Equal(40, ShapesModelQuality.MeasureReconstruction(vae, world, prompts: 40).Samples.Select(s => s.Prompt).Distinct().Count());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ShapesModelQuality.MeasureReconstruction(vae, world, prompts: 41));
        Assert.Equal("prompts", e.ParamName);
        Assert.Contains("only 40 distinct full prompts", e.Message);
    }
}
