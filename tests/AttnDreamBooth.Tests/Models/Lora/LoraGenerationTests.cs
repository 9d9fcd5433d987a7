using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.Models.Lora;

public sealed class LoraGenerationTests
{
    private static byte[] Pixels(IReadOnlyList<GeneratedImage> images) => images.SelectMany(i => i.Image.Pixels).ToArray();

    [Fact]
    public async Task AFixtureLoraChangesGenerationByItsScaleAndMergedEqualsHooked()
    {
        var options = new GenerationOptions { Steps = 2, Seed = 5, Width = 64, Height = 64 };
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        const string prompt = "a photo of a dog";
        var plain = Pixels(await pipeline.GenerateAsync(prompt, options));

        string file = Path.Combine(TestPaths.FixturesRoot, "tiny-sd1-lora", "kohya", "lora.safetensors");
        using (var lora = pipeline.Components.LoadLora(file, scale: 0.5))
        {
            Assert.True(lora.IsInstalled);
            Assert.All(lora.Adapters, a => Assert.Equal(0.5, a.Scale));
            var half = Pixels(await pipeline.GenerateAsync(prompt, options));
            lora.SetScale(0.0);
            Assert.Equal(plain, Pixels(await pipeline.GenerateAsync(prompt, options)));
            lora.SetScale(0.5);
            Assert.NotEqual(plain, half);
            lora.Merge();
            var merged = Pixels(await pipeline.GenerateAsync(prompt, options));
            // Fused and unfused differ only by float32 rounding (the references say ≤ 3.3e-6): at most one level per channel.
            Assert.True(merged.Zip(half).All(p => Math.Abs(p.First - p.Second) <= 1), "merged and hooked generations differ by more than one level");
            lora.Unmerge();
        }
        // Disposing the network takes its hooks off; unmerging subtracted the update again, which restores the weights up to
        // float32 rounding (as diffusers' unfuse_lora), so the image is back within one level.
        var after = Pixels(await pipeline.GenerateAsync(prompt, options));
        Assert.True(after.Zip(plain).All(p => Math.Abs(p.First - p.Second) <= 1), "removing the LoRA must restore the base generation");
    }
}
