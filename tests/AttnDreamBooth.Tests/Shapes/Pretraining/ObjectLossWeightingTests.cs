using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The opt-in object-weighted U-Net loss: its coverage on the latent grid, its formula, and runs that use it.</summary>
[Collection(PretrainingCollection.Name)]
public sealed class ObjectLossWeightingTests
{
    private static readonly string Tokenizer = Path.Combine(TestPaths.TinySd1, "tokenizer");

    [Fact]
    public void TheCoverageIsTheUnionOfTheMasksAveragedOverEachLatentPixelsBlock()
    {
        // 4×4 image, factor 2. Mask a fills the top-left block and one pixel of the top-right block at half coverage;
        // mask b overlaps a's top-left pixel (the union keeps the larger value) and fills the bottom-right pixel.
        var a = new byte[16];
        a[0] = a[1] = a[4] = a[5] = 255;
        a[2] = 128;
        var b = new byte[16];
        b[0] = 100;
        b[15] = 255;
        var m = ObjectLossWeighting.LatentCoverage([new ObjectMask(4, 4, a), new ObjectMask(4, 4, b)], imageSize: 4, factor: 2);
        Assert.Equal([1f, (float)(128 / 1020.0), 0f, 0.25f], m);
        Assert.Equal([0f, 0f, 0f, 0f], ObjectLossWeighting.LatentCoverage([], 4, 2));
        Assert.Throws<ArgumentException>(() => ObjectLossWeighting.LatentCoverage([new ObjectMask(2, 2, new byte[4])], 4, 2));
    }

    [Fact]
    public void ThePerImageLossIsTheWeightedMeanOfTheSquaredErrorDividedByTheMeanWeight()
    {
        const double lambda = 3;
        float[] coverage = [1f, 0.25f, 0f, 0.5f, 0f, 0f, 0f, 0f]; // two images, 1×2×2 each
        float[] prediction = [.. Enumerable.Range(0, 16).Select(i => (float)Math.Sin(i + 1))]; // two images, 2×2×2
        float[] target = [.. Enumerable.Range(0, 16).Select(i => (float)(0.1 * i - 0.5))];
        using var scope = torch.NewDisposeScope();
        var loss = ObjectLossWeighting.PerImageLoss(torch.tensor(prediction, [2, 2, 2, 2]), torch.tensor(target, [2, 2, 2, 2]), torch.tensor(coverage, [2, 1, 2, 2]), lambda);

        var expected = new double[2];
        for (int b = 0; b < 2; b++)
        {
            double weighted = 0, weights = 0;
            for (int p = 0; p < 4; p++)
            {
                double w = 1 + lambda * coverage[b * 4 + p];
                weights += w;
                for (int c = 0; c < 2; c++)
                {
                    double e = prediction[b * 8 + c * 4 + p] - target[b * 8 + c * 4 + p];
                    weighted += w * e * e;
                }
            }
            expected[b] = (weighted / 8) / (weights / 4);
        }
        var actual = loss.data<float>().ToArray();
        Assert.Equal(2, actual.Length);
        for (int b = 0; b < 2; b++) Assert.Equal(expected[b], actual[b], 5);
        // Without objects every weight is 1: the plain MSE.
        double mse = Enumerable.Range(8, 8).Average(i => Math.Pow(prediction[i] - target[i], 2));
        Assert.Equal(mse, actual[1], 5);
        Assert.NotEqual(Enumerable.Range(0, 8).Average(i => Math.Pow(prediction[i] - target[i], 2)), actual[0], 3);
    }

    [Fact]
    public void ARendersMaskOnTheLatentGridSumsToTheObjectsAreaOverTheFactorSquared()
    {
        var sampler = new ShapesSampler(ShapesWorld.Default, 3, new ShapesSamplerOptions { ImageSize = 64, SecondObjectProbability = 0 });
        const int factor = 4;
        for (int index = 0; index < 4; index++)
        {
            var mask = Assert.Single(sampler.Sample(index).Masks);
            var m = ObjectLossWeighting.LatentCoverage([mask], 64, factor);
            Assert.Equal(16 * 16, m.Length);
            Assert.All(m, v => Assert.InRange(v, 0f, 1f));
            Assert.True(mask.Area > 16, $"sample {index} has an object of {mask.Area} px");
            Assert.Equal(mask.Area / (factor * factor), m.Sum(v => (double)v), 3);
        }
    }

    [Fact]
    public void TheWeightIsValidatedNamingItsKeyAndLeftOutOfTheJsonAndFingerprintWhenZero()
    {
        foreach (double bad in new[] { -1, double.NaN, double.PositiveInfinity })
            Assert.Contains("object_loss_weight", Assert.Throws<ArgumentException>(() => (PretrainingRecipe.Default with { ObjectLossWeight = bad }).Validate()).Message);

        // The fingerprint of the default recipe as recorded before the weight existed.
        Assert.Equal("50b0a815ea5420348367bd898e09063f82e9d48d346333290cda2af86a3a544b", PretrainingRecipe.Default.Fingerprint());
        Assert.DoesNotContain("object_loss_weight", PretrainingRecipe.Default.ToJson());
        Assert.Equal(PretrainingRecipe.Default.Fingerprint(), PretrainingRecipe.FromJson("""{ "object_loss_weight": 0 }""").Fingerprint());
        var weighted = PretrainingRecipe.Default with { ObjectLossWeight = 4 };
        Assert.Contains("\"object_loss_weight\": 4", weighted.ToJson());
        Assert.Equal(weighted, PretrainingRecipe.FromJson(weighted.ToJson()) with { Architecture = weighted.Architecture });
        Assert.NotEqual(PretrainingRecipe.Default.Fingerprint(), weighted.Fingerprint());
    }

    [Fact]
    public void ADilatedCoverageIsTheLargestCoverageWithinTheRadiusAndStopsAtTheBorder()
    {
        // An 8×8 image at factor 2 gives a 4×4 latent grid: latent pixel (1, 1) fully covered, (3, 3) a quarter.
        var coverage = new byte[64];
        foreach (int y in new[] { 2, 3 })
            foreach (int x in new[] { 2, 3 }) coverage[y * 8 + x] = 255;
        coverage[7 * 8 + 7] = 255;
        var example = new PretrainingExample(new AttnDreamBooth.Imaging.RgbImage(8, 8, new byte[8 * 8 * 3]), "a square") { Masks = [new ObjectMask(8, 8, coverage)] };
        using var scope = torch.NewDisposeScope();
        var plain = ObjectLossWeighting.CoverageTensor([example], 8, 2).data<float>().ToArray();
        var dilated = ObjectLossWeighting.CoverageTensor([example], 8, 2, dilation: 1).data<float>().ToArray();
        Assert.Equal([0f, 0f, 0f, 0f, 0f, 1f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0.25f], plain);
        Assert.Equal([
            1f, 1f, 1f, 0f,
            1f, 1f, 1f, 0f,
            1f, 1f, 1f, 0.25f,
            0f, 0f, 0.25f, 0.25f,
        ], dilated);
        Assert.Equal(Enumerable.Repeat(1f, 16), ObjectLossWeighting.CoverageTensor([example], 8, 2, dilation: 2).data<float>().ToArray().Select(v => v > 0 ? 1f : 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => ObjectLossWeighting.CoverageTensor([example], 8, 2, dilation: -1));
    }

    [Fact]
    public void TheDilationIsValidatedNamingItsKeyAndLeftOutOfTheJsonWhenZero()
    {
        var weighted = PretrainingRecipe.Default with { ObjectLossWeight = 4 };
        Assert.DoesNotContain("object_loss_dilation", weighted.ToJson());
        var dilated = weighted with { ObjectLossDilation = 1 };
        Assert.Contains("\"object_loss_dilation\": 1", dilated.ToJson());
        Assert.Equal(dilated, PretrainingRecipe.FromJson(dilated.ToJson()) with { Architecture = dilated.Architecture });
        Assert.NotEqual(weighted.Fingerprint(), dilated.Fingerprint());
        foreach (int bad in new[] { -1, 5 })
            Assert.Contains("object_loss_dilation", Assert.Throws<ArgumentException>(() => (weighted with { ObjectLossDilation = bad }).Validate()).Message);
        Assert.Contains("object_loss_weight", Assert.Throws<ArgumentException>(() => (PretrainingRecipe.Default with { ObjectLossDilation = 1 }).Validate()).Message);
    }

    [Fact]
    public async Task ADilatedRunWeightsTheLossDifferentlyFromTheUndilatedOneAndResumesBitIdentically()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var weighted = ShapesPretrainerTests.TinyRecipe(seed: 5) with { ObjectLossWeight = 4 };
        var recipe = weighted with { ObjectLossDilation = 1 };
        var undilated = await Trainer(weighted, Source(weighted), temp.File("undilated")).RunAsync();
        var straight = await Trainer(recipe, Source(recipe), temp.File("straight")).RunAsync();
        Assert.Equal(undilated.State.UNetMse[0], straight.State.UNetMse[0]);
        Assert.NotEqual(undilated.State.UNetLosses[0], straight.State.UNetLosses[0]);
        await AssertAnInterruptedRunResumesTo(straight, recipe, temp.File("resumed"));
    }

    [Fact]
    public void TheContinuationRecipesAreTheZeroSnrRecipeAtALowerRate()
    {
        var zeroSnr = PretrainingRecipe.Default with
        {
            VaeSteps = 0, ObjectLossWeight = 4, Scheduler = new ShapesSchedulerSettings { ZeroTerminalSnr = true },
            UNetSteps = 1500, UNetLearningRate = 3e-4,
        };
        var dilated = zeroSnr with { ObjectLossDilation = 1 };
        string folder = Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes");
        Assert.Equal(zeroSnr.ToJson(), File.ReadAllText(Path.Combine(folder, "continue-1500.json")).TrimEnd());
        Assert.Equal(dilated.ToJson(), File.ReadAllText(Path.Combine(folder, "continue-1500-dilated.json")).TrimEnd());
        Assert.Equal((dilated with { UNetSteps = 2500 }).ToJson(), File.ReadAllText(Path.Combine(folder, "continue-2500-dilated.json")).TrimEnd());
    }

    [Fact]
    public void TheSampleObjectWeightRecipeIsTheDefaultWithAWeightOfFourAndIsSpeltAsRecipesAreWritten()
    {
        string json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes", "object-weight-4.json"));
        var expected = PretrainingRecipe.Default with { VaeSteps = 0, UNetSteps = 4000, ObjectLossWeight = 4 };
        Assert.Equal(expected.ToJson(), json.TrimEnd());
        Assert.Equal(expected.Fingerprint(), PretrainingRecipe.FromJson(json).Fingerprint());
    }

    [Fact]
    public async Task WithoutTheWeightASourceWithoutMasksTrainsBitIdenticallyWithOneAndWithItSuchASourceIsRefused()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = ShapesPretrainerTests.TinyRecipe(seed: 5) with { VaeSteps = 1 };
        var withMasks = await Trainer(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize), temp.File("a")).RunAsync();
        var withoutMasks = await Trainer(recipe, new WithoutMasks(new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize)), temp.File("b")).RunAsync();
        Assert.Equal(withMasks.State.UNetLosses, withoutMasks.State.UNetLosses);
        AssertSameTensors(withMasks.CheckpointPath, withoutMasks.CheckpointPath);

        var ex = Assert.Throws<ArgumentException>(() => Trainer(recipe with { ObjectLossWeight = 1 }, new WithoutMasks(new ShapesWorldSource(ShapesWorld.Default, 1, 32)), temp.File("c")));
        Assert.Contains("object_loss_weight", ex.Message);
        Assert.Contains(nameof(WithoutMasks), ex.Message);
    }

    [Fact]
    public async Task AWeightedRunTrainsDeterministicallyAndResumesBitIdentically()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var plain = ShapesPretrainerTests.TinyRecipe(seed: 5);
        var recipe = plain with { ObjectLossWeight = 4 };
        var unweighted = await Trainer(plain, Source(plain), temp.File("plain")).RunAsync();
        var straight = await Trainer(recipe, Source(recipe), temp.File("straight")).RunAsync();
        // The weighting only enters the U-Net phase's loss: before the first update the plain MSE is the same, the loss is not.
        Assert.Equal(unweighted.State.VaeLosses, straight.State.VaeLosses);
        Assert.Equal(unweighted.State.UNetMse[0], straight.State.UNetMse[0]);
        Assert.NotEqual(unweighted.State.UNetLosses[0], straight.State.UNetLosses[0]);
        Assert.All(straight.State.UNetLosses, l => Assert.True(double.IsFinite(l) && l > 0));
        await AssertAnInterruptedRunResumesTo(straight, recipe, temp.File("resumed"));
    }

    /// <summary>Runs <paramref name="recipe"/> in <paramref name="folder"/>, cancels it after its first U-Net step, resumes
    /// it, and asserts it ends exactly as the uninterrupted run <paramref name="straight"/>.</summary>
    private static async Task AssertAnInterruptedRunResumesTo(PretrainingResult straight, PretrainingRecipe recipe, string folder)
    {
        using var cts = new CancellationTokenSource();
        var interrupted = Trainer(recipe, Source(recipe), folder, checkpointEvery: 1).RunAsync(new InlineProgress<PretrainingProgress>(p =>
        {
            if (p.GlobalStep == recipe.VaeSteps + 1) cts.Cancel();
        }), cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => interrupted);
        var (_, stopped) = PretrainingCheckpoint.ReadState(folder);
        Assert.Single(stopped.UNetLosses);
        var resumed = await Trainer(recipe, Source(recipe), folder, resume: true).RunAsync();
        ShapesPretrainerTests.AssertSameRun(straight, resumed);
    }

    private static ShapesWorldSource Source(PretrainingRecipe recipe) => new(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize);

    private static ShapesPretrainer Trainer(PretrainingRecipe recipe, IPretrainingSource source, string checkpoints, bool resume = false, int checkpointEvery = 2) =>
        new(recipe, source, new PretrainingOptions { CheckpointDirectory = checkpoints, TokenizerFolder = Tokenizer, Resume = resume, CheckpointEverySteps = checkpointEvery });

    private static void AssertSameTensors(string first, string second)
    {
        var a = PretrainingCheckpoint.ReadTensors(first);
        var b = PretrainingCheckpoint.ReadTensors(second);
        Assert.Equal(a.Keys.Order(StringComparer.Ordinal), b.Keys.Order(StringComparer.Ordinal));
        Assert.Contains(a.Keys, k => k.StartsWith("optimizer.unet.", StringComparison.Ordinal));
        foreach (string key in a.Keys) Assert.True(a[key].bytes.SequenceEqual(b[key].bytes), $"{key} differs");
    }

    /// <summary>A source that, like a folder of captioned photos, knows no object masks.</summary>
    private sealed class WithoutMasks(IPretrainingSource inner) : IPretrainingSource
    {
        public int ImageSize => inner.ImageSize;

        public PretrainingExample Get(long index) => inner.Get(index) with { Masks = null };
    }
}
