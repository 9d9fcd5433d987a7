using AttnDreamBooth.Imaging;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The VAE phase's novel appearances (<see cref="PretrainingRecipe.VaeNovelAppearanceShare"/>) and a VAE phase
/// that fine-tunes a model folder's VAE.</summary>
[Collection(PretrainingCollection.Name)]
public sealed class NovelAppearanceTests
{
    private static ShapesWorldSource Source(PretrainingRecipe recipe) => new(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize);

    /// <summary>Mean, over the pixels well inside the object, of the RGB distance to the nearest fill or ink colour of the world.</summary>
    private static double DistanceToThePalette(RgbImage image, ObjectMask mask)
    {
        var palette = ShapesWorld.Default.Colors.SelectMany(c => new[] { c.Fill, c.Ink }).ToList();
        double sum = 0;
        int count = 0;
        for (int y = 1; y < image.Height - 1; y++)
            for (int x = 1; x < image.Width - 1; x++)
            {
                if (!(mask.Contains(x, y) && mask.Contains(x - 1, y) && mask.Contains(x + 1, y) && mask.Contains(x, y - 1) && mask.Contains(x, y + 1))) continue;
                var p = image[x, y];
                sum += palette.Min(c => Math.Sqrt(Math.Pow(p.R - c.R, 2) + Math.Pow(p.G - c.G, 2) + Math.Pow(p.B - c.B, 2)));
                count++;
            }
        return sum / count;
    }

    [Fact]
    public void ANovelAppearanceIsDeterministicKeepsTheScenesBackgroundAndLeavesTheWorldsPalette()
    {
        var source = new ShapesWorldSource(ShapesWorld.Default, seed: 3, imageSize: 64);
        Assert.True(source.ProvidesNovelAppearances);
        double plain = 0, novel = 0;
        const int count = 24;
        for (long i = 0; i < count; i++)
        {
            var example = source.Get(i);
            var restyled = source.GetWithNovelAppearance(i);
            Assert.Equal(restyled.Pixels, source.GetWithNovelAppearance(i).Pixels);
            // Same scene: away from every object the pixels are the captioned render's (a wide outline may reach a few
            // pixels past the captioned silhouette).
            var union = new bool[64 * 64];
            foreach (var m in example.Masks!)
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++)
                        for (int dy = -3; dy <= 3; dy++)
                            for (int dx = -3; dx <= 3; dx++)
                                if (m.Contains(x + dx, y + dy)) union[y * 64 + x] = true;
            int outside = 0, same = 0;
            for (int k = 0; k < union.Length; k++)
            {
                if (union[k]) continue;
                outside++;
                if (example.Image[k % 64, k / 64] == restyled[k % 64, k / 64]) same++;
            }
            Assert.True(same >= 0.97 * outside, $"index {i}: {same} of {outside} background pixels kept");
            plain += DistanceToThePalette(example.Image, example.Masks![0]) / count;
            novel += DistanceToThePalette(restyled, example.Masks![0]) / count;
        }
        // Captioned objects are drawn in the palette (anti-aliasing and pattern edges aside); random colours are not.
        Assert.True(plain < 12, $"captioned renders: mean distance {plain:F1} to the palette");
        Assert.True(novel > 40, $"novel appearances: mean distance {novel:F1} to the palette");
    }

    [Fact]
    public void TheShareIsValidatedWrittenOnlyWhenSetAndRefusedForASourceWithoutNovelAppearances()
    {
        var recipe = ShapesPretrainerTests.TinyRecipe() with { VaeNovelAppearanceShare = 0.5 };
        Assert.DoesNotContain("vae_novel_appearance_share", ShapesPretrainerTests.TinyRecipe().ToJson());
        Assert.Contains("\"vae_novel_appearance_share\": 0.5", recipe.ToJson());
        Assert.Equal(recipe.Fingerprint(), PretrainingRecipe.FromJson(recipe.ToJson()).Fingerprint());
        Assert.NotEqual(recipe.Fingerprint(), ShapesPretrainerTests.TinyRecipe().Fingerprint());
        foreach (double bad in new[] { -0.1, 1.5, double.NaN })
            Assert.Contains("vae_novel_appearance_share", Assert.Throws<ArgumentException>(() => (recipe with { VaeNovelAppearanceShare = bad }).Validate()).Message);
        var options = new PretrainingOptions { CheckpointDirectory = "ck", TokenizerFolder = ShapesPretrainerTests.Tokenizer };
        var ex = Assert.Throws<ArgumentException>(() => new ShapesPretrainer(recipe, new CaptionedOnly(Source(recipe)), options));
        Assert.Contains("ProvidesNovelAppearances", ex.Message);
        Assert.Throws<NotSupportedException>(() => ((IPretrainingSource)new CaptionedOnly(Source(recipe))).GetWithNovelAppearance(0));
    }

    [Fact]
    public async Task AVaePhaseWithNovelAppearancesTrainsOnThemAndResumesBitIdentically()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var plainRecipe = ShapesPretrainerTests.TinyRecipe(seed: 6) with { UNetSteps = 1 };
        var recipe = plainRecipe with { VaeNovelAppearanceShare = 0.5 };
        var plain = await ShapesPretrainerTests.Trainer(plainRecipe, temp.File("plain")).RunAsync();
        var straight = await ShapesPretrainerTests.Trainer(recipe, temp.File("straight")).RunAsync();
        // Same seed, same initial weights and noise: the first loss differs only through the images (one of two novel).
        Assert.NotEqual(plain.State.VaeLosses[0], straight.State.VaeLosses[0]);

        await ShapesPretrainerTests.InterruptAfterAsync(recipe, temp.File("resumed"), 2);
        var resumed = await ShapesPretrainerTests.Trainer(recipe, temp.File("resumed"), resume: true).RunAsync();
        ShapesPretrainerTests.AssertSameRun(straight, resumed);
    }

    [Fact]
    public async Task AVaePhaseContinuingAModelFolderFineTunesItsVaeKeepsItsDenoiserAndResumesWithoutTheFolder()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var first = await ShapesPretrainerTests.Trainer(ShapesPretrainerTests.TinyRecipe(seed: 8) with { UNetSteps = 2 }, temp.File("first")).RunAsync();
        string model = temp.File("model");
        ShapesModelExporter.Export(first.CheckpointPath, ShapesPretrainerTests.Tokenizer, model);
        var recipe = ShapesPretrainerTests.TinyRecipe(seed: 9) with { VaeSteps = 3, UNetSteps = 0, VaeNovelAppearanceShare = 0.5 };
        var options = new PretrainingOptions { CheckpointDirectory = temp.File("straight"), TokenizerFolder = ShapesPretrainerTests.Tokenizer, InitialModelFolder = model, CheckpointEverySteps = 1 };
        var straight = await new ShapesPretrainer(recipe, Source(recipe), options).RunAsync();

        var folder = PretrainingCheckpoint.ReadTensors(first.CheckpointPath);
        var after = PretrainingCheckpoint.ReadTensors(straight.CheckpointPath);
        foreach (string prefix in new[] { ShapesNetworks.TextEncoderPrefix, ShapesNetworks.UNetPrefix })
        {
            var keys = folder.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(keys);
            // Exported in half precision: the denoiser is the folder's to fp16 rounding, untouched by the VAE phase.
            foreach (string key in keys) Assert.True(folder[key].allclose(after[key], rtol: 1e-3, atol: 1e-3), $"{key} is not the folder's");
        }
        string convIn = ShapesNetworks.VaePrefix + "encoder.conv_in.weight";
        Assert.False(folder[convIn].allclose(after[convIn], rtol: 1e-3, atol: 1e-3), "the VAE phase did not change the folder's VAE");
        Assert.Equal(3, straight.State.VaeLosses.Count);
        // The VAE changed, so the latent scale is measured again rather than taken from the folder.
        Assert.NotEqual(first.State.ScalingFactor, straight.State.ScalingFactor);

        // Interrupted inside the VAE phase and resumed without naming the folder: the checkpoint carried the denoiser.
        ShapesPretrainerTests.AssertSameRun(straight, await InterruptedAfterTheFirstStepAndResumedWithoutTheFolderAsync(recipe, options, temp.File("resumed")));
    }

    [Fact]
    public async Task ADecoderOnlyVaePhaseKeepsTheFoldersEncoderAndLatentScaleTrainsTheDecoderAndResumesBitIdentically()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var first = await ShapesPretrainerTests.Trainer(ShapesPretrainerTests.TinyRecipe(seed: 10) with { UNetSteps = 2 }, temp.File("first")).RunAsync();
        string model = temp.File("model");
        ShapesModelExporter.Export(first.CheckpointPath, ShapesPretrainerTests.Tokenizer, model);
        var recipe = ShapesPretrainerTests.TinyRecipe(seed: 11) with { VaeSteps = 3, UNetSteps = 0, VaeNovelAppearanceShare = 0.5, VaeDecoderOnly = true };
        var options = new PretrainingOptions { CheckpointDirectory = temp.File("straight"), TokenizerFolder = ShapesPretrainerTests.Tokenizer, InitialModelFolder = model, CheckpointEverySteps = 1 };
        var straight = await new ShapesPretrainer(recipe, Source(recipe), options).RunAsync();

        var after = PretrainingCheckpoint.ReadTensors(straight.CheckpointPath);
        using (var vae = AttnDreamBooth.Models.Vae.AutoencoderKL.FromFolder(Path.Combine(model, "vae")))
        {
            int kept = 0, changed = 0;
            foreach (var (name, weight) in vae.named_parameters())
            {
                var trained = after[ShapesNetworks.VaePrefix + name];
                bool decoder = name.StartsWith("decoder.", StringComparison.Ordinal) || name.StartsWith("post_quant_conv.", StringComparison.Ordinal);
                if (!decoder)
                {
                    // fp16 on disk widens exactly to fp32: the frozen side is the folder's to the bit.
                    Assert.True(weight.eq(trained).all().item<bool>(), $"{name} moved in a decoder-only phase");
                    kept++;
                }
                else if (!weight.eq(trained).all().item<bool>()) changed++;
            }
            Assert.True(kept > 10, $"only {kept} encoder tensors compared");
            Assert.True(changed > 10, $"only {changed} decoder tensors changed");
        }
        // The latents are the folder's, so their scale is the one the denoiser was trained with, not measured again.
        Assert.Equal(first.State.ScalingFactor, straight.State.ScalingFactor);
        Assert.Equal(3, straight.State.VaeLosses.Count);

        ShapesPretrainerTests.AssertSameRun(straight, await InterruptedAfterTheFirstStepAndResumedWithoutTheFolderAsync(recipe, options, temp.File("resumed")));
    }

    [Fact]
    public void ADecoderOnlyRecipeIsWrittenOnlyWhenSetAndNeedsAVaePhaseAndAVaeToStartFrom()
    {
        var recipe = ShapesPretrainerTests.TinyRecipe() with { VaeDecoderOnly = true };
        Assert.DoesNotContain("vae_decoder_only", ShapesPretrainerTests.TinyRecipe().ToJson());
        Assert.Contains("\"vae_decoder_only\": true", recipe.ToJson());
        Assert.Equal(recipe.Fingerprint(), PretrainingRecipe.FromJson(recipe.ToJson()).Fingerprint());
        Assert.NotEqual(recipe.Fingerprint(), ShapesPretrainerTests.TinyRecipe().Fingerprint());
        Assert.Contains("vae_decoder_only", Assert.Throws<ArgumentException>(() => (recipe with { VaeSteps = 0 }).Validate()).Message);
        var options = new PretrainingOptions { CheckpointDirectory = "ck", TokenizerFolder = ShapesPretrainerTests.Tokenizer };
        var ex = Assert.Throws<ArgumentException>(() => new ShapesPretrainer(recipe, Source(recipe), options));
        Assert.Contains("vae_decoder_only", ex.Message);
        Assert.Contains("InitialModelFolder", ex.Message);
    }

    [Fact]
    public void TheNovelAppearanceRecipesAreTheDocumentedOnesSpeltAsRecipesAreWritten()
    {
        string folder = Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes");
        var zeroSnr = new ShapesSchedulerSettings { ZeroTerminalSnr = true };
        // The VAE fine-tune of the shipped model's VAE: the continuation recipe with a VAE phase and no U-Net phase.
        var continuation = PretrainingRecipe.Default with
        {
            VaeSteps = 0, ObjectLossWeight = 4, ObjectLossDilation = 1, Scheduler = zeroSnr, UNetSteps = 2500, UNetLearningRate = 3e-4,
        };
        var fineTune = continuation with { Seed = 20261206, VaeSteps = 1000, VaeLearningRate = 3e-4, VaeNovelAppearanceShare = 0.5, UNetSteps = 0 };
        Assert.Equal(fineTune.ToJson(), File.ReadAllText(Path.Combine(folder, "vae-novel-appearance-1000.json")).TrimEnd());
        // The decoder-only fine-tune: the same, three times as long, its encoder frozen.
        Assert.Equal((fineTune with { VaeSteps = 3000, VaeDecoderOnly = true }).ToJson(),
            File.ReadAllText(Path.Combine(folder, "vae-decoder-novel-appearance-3000.json")).TrimEnd());
        // The whole VAE fine-tuned at its from-scratch peak, then the fifth model's last continuation on its latents: the
        // shipped (sixth) model is this recipe's export.
        var sixth = continuation with { Seed = 20261207, VaeSteps = 3000, VaeNovelAppearanceShare = 0.5 };
        Assert.Equal(sixth.ToJson(), File.ReadAllText(Path.Combine(folder, "vae-novel-3000-then-continue-2500.json")).TrimEnd());
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd", "manifest.json")));
        Assert.Equal(sixth.Fingerprint(), manifest.RootElement.GetProperty("recipe_fingerprint").GetString());
        // The two from-scratch VAE layouts compared in the docs: identical but for the latent channels.
        var fourChannels = PretrainingRecipe.Default with
        {
            VaeSteps = 3000, VaeNovelAppearanceShare = 0.5, UNetSteps = 4000, ObjectLossWeight = 4, ObjectLossDilation = 1, Scheduler = zeroSnr,
        };
        var architecture = fourChannels.Architecture;
        var eightChannels = fourChannels with
        {
            Architecture = architecture with
            {
                Vae = architecture.Vae with { LatentChannels = 8 },
                UNet = architecture.UNet with { InChannels = 8, OutChannels = 8 },
            },
        };
        Assert.Equal(fourChannels.ToJson(), File.ReadAllText(Path.Combine(folder, "novel-vae-4ch.json")).TrimEnd());
        Assert.Equal(eightChannels.ToJson(), File.ReadAllText(Path.Combine(folder, "novel-vae-8ch.json")).TrimEnd());
        eightChannels.Validate();
    }

    /// <summary>Runs <paramref name="recipe"/> from <paramref name="options"/>' model folder into <paramref name="checkpoints"/>,
    /// cancels it after its first step, and resumes it without naming the folder (the checkpoint must carry what it needs).</summary>
    private static async Task<PretrainingResult> InterruptedAfterTheFirstStepAndResumedWithoutTheFolderAsync(PretrainingRecipe recipe, PretrainingOptions options, string checkpoints)
    {
        using var cts = new CancellationTokenSource();
        var interrupted = new ShapesPretrainer(recipe, Source(recipe), options with { CheckpointDirectory = checkpoints }).RunAsync(
            new InlineProgress<PretrainingProgress>(p =>
            {
                if (p.GlobalStep == 1) cts.Cancel();
            }), cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => interrupted);
        return await new ShapesPretrainer(recipe, Source(recipe),
            options with { CheckpointDirectory = checkpoints, InitialModelFolder = null, Resume = true }).RunAsync();
    }

    /// <summary>A source that only has captioned renders, as a user's own data would.</summary>
    private sealed class CaptionedOnly(IPretrainingSource inner) : IPretrainingSource
    {
        public int ImageSize => inner.ImageSize;

        public PretrainingExample Get(long index) => inner.Get(index);
    }
}
