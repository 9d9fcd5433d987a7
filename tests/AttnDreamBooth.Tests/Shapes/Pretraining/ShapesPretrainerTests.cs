using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The pretraining loop on the tiny architecture: losses, exact resume after an interruption, export and loading.</summary>
[Collection(PretrainingCollection.Name)]
public sealed class ShapesPretrainerTests
{
    internal static readonly string Tokenizer = Path.Combine(TestPaths.TinySd1, "tokenizer");

    internal static PretrainingRecipe TinyRecipe(long seed = 11) => PretrainingRecipe.Default with
    {
        Architecture = ShapesModelArchitecture.Tiny,
        Seed = seed,
        VaeSteps = 3,
        VaeBatchSize = 2,
        UNetSteps = 3,
        UNetBatchSize = 3,
        WarmupSteps = 1,
    };

    internal static ShapesPretrainer Trainer(PretrainingRecipe recipe, string checkpoints, bool resume = false) =>
        new(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize),
            new PretrainingOptions { CheckpointDirectory = checkpoints, TokenizerFolder = Tokenizer, Resume = resume, CheckpointEverySteps = 2 });

    [Fact]
    public async Task ARunReportsEveryStepWithFiniteLossesAndEndsWithACompleteCheckpoint()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = TinyRecipe();
        var reports = new List<PretrainingProgress>();
        var result = await Trainer(recipe, temp.File("ck")).RunAsync(new InlineProgress<PretrainingProgress>(reports.Add));

        Assert.Equal(Enumerable.Range(1, recipe.TotalSteps), reports.Select(r => r.GlobalStep));
        Assert.Equal([PretrainingPhase.Vae, PretrainingPhase.Vae, PretrainingPhase.Vae, PretrainingPhase.UNet, PretrainingPhase.UNet, PretrainingPhase.UNet], reports.Select(r => r.Phase));
        Assert.All(reports, r => Assert.True(double.IsFinite(r.Loss) && r.Loss > 0, $"loss {r.Loss} at {r.GlobalStep}"));
        Assert.All(reports, r => Assert.NotNull(r.EstimatedRemaining));
        // Warm-up of one step then cosine decay: the first step of each phase runs at the peak rate.
        Assert.Equal(recipe.VaeLearningRate, reports[0].LearningRate, 12);
        Assert.True(reports[2].LearningRate < reports[1].LearningRate);
        Assert.True(result.State.IsComplete(recipe));
        Assert.Equal(3, result.State.VaeLosses.Count);
        Assert.Equal(3, result.State.UNetLosses.Count);
        Assert.True(result.State.ScalingFactor > 0 && double.IsFinite(result.State.ScalingFactor));
        Assert.Equal(PretrainingCheckpoint.Latest(temp.File("ck")), result.CheckpointPath);
    }

    [Theory]
    [InlineData(2)] // inside the VAE phase
    [InlineData(4)] // inside the U-Net phase
    public async Task AnInterruptedRunResumesToBitIdenticalWeightsOptimizerStateAndLosses(int stopAfter)
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = TinyRecipe(seed: 5);
        var straight = await Trainer(recipe, temp.File("straight")).RunAsync();

        await InterruptAfterAsync(recipe, temp.File("resumed"), stopAfter);
        var (_, stopped) = PretrainingCheckpoint.ReadState(temp.File("resumed"));
        Assert.Equal(stopAfter, stopped.VaeLosses.Count + stopped.UNetLosses.Count);

        var resumed = await Trainer(recipe, temp.File("resumed"), resume: true).RunAsync();
        AssertSameRun(straight, resumed);
        Assert.Contains(PretrainingCheckpoint.ReadTensors(resumed.CheckpointPath).Keys, k => k.StartsWith("optimizer.unet.", StringComparison.Ordinal));
    }

    /// <summary>Runs <paramref name="recipe"/> with its checkpoints in <paramref name="checkpoints"/> and cancels it once
    /// global step <paramref name="stopAfter"/> is reported; asserts that it stopped by the cancellation.</summary>
    internal static async Task InterruptAfterAsync(PretrainingRecipe recipe, string checkpoints, int stopAfter)
    {
        using var cts = new CancellationTokenSource();
        var interrupted = Trainer(recipe, checkpoints).RunAsync(new InlineProgress<PretrainingProgress>(p =>
        {
            if (p.GlobalStep == stopAfter) cts.Cancel();
        }), cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => interrupted);
    }

    /// <summary>Asserts that a resumed run ended exactly as the uninterrupted one: losses, latent scale and every
    /// checkpoint tensor (weights, optimizer moments, random streams) bit for bit.</summary>
    internal static void AssertSameRun(PretrainingResult straight, PretrainingResult resumed)
    {
        Assert.Equal(straight.State.VaeLosses, resumed.State.VaeLosses);
        Assert.Equal(straight.State.UNetLosses, resumed.State.UNetLosses);
        Assert.Equal(straight.State.UNetMse, resumed.State.UNetMse);
        Assert.Equal(straight.State.ScalingFactor, resumed.State.ScalingFactor);
        var a = PretrainingCheckpoint.ReadTensors(straight.CheckpointPath);
        var b = PretrainingCheckpoint.ReadTensors(resumed.CheckpointPath);
        Assert.Equal(a.Keys.Order(StringComparer.Ordinal), b.Keys.Order(StringComparer.Ordinal));
        foreach (string key in a.Keys) Assert.True(a[key].bytes.SequenceEqual(b[key].bytes), $"{key} differs after the resume");
    }

    [Fact]
    public async Task ACheckpointSpeltAsEarlierVersionsWroteItResumesToTheSameWeights()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = TinyRecipe(seed: 5);
        var straight = await Trainer(recipe, temp.File("straight")).RunAsync();
        await InterruptAfterAsync(recipe, temp.File("resumed"), 4);

        // Rewrite the checkpoint as the earlier writers did (C# names, enums as in C#; the recipe in .NET's snake_case),
        // then check that the spelling is the one of the files those versions wrote (tests/fixtures/written-before-snake-case).
        var (folder, state) = PretrainingCheckpoint.ReadState(temp.File("resumed"));
        var enums = new JsonSerializerOptions { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };
        var recipeSpelling = new JsonSerializerOptions(enums) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        string earlier = JsonSerializer.Serialize(state with { RecipeJson = JsonSerializer.Serialize(recipe, recipeSpelling) }, enums);
        string fixtures = Path.Combine(TestPaths.FixturesRoot, "written-before-snake-case");
        Assert.Equal(Keys(File.ReadAllText(Path.Combine(fixtures, "pretraining-checkpoint.json"))), Keys(earlier));
        Assert.Equal(Keys(File.ReadAllText(Path.Combine(fixtures, "pretraining-recipe.json"))), Keys(JsonSerializer.Deserialize<PretrainingCheckpointState>(earlier, enums)!.RecipeJson));
        File.WriteAllText(Path.Combine(folder, PretrainingCheckpoint.JsonFile), earlier);

        var resumed = await Trainer(recipe, temp.File("resumed"), resume: true).RunAsync();
        Assert.Equal(straight.State.UNetLosses, resumed.State.UNetLosses);
        var a = PretrainingCheckpoint.ReadTensors(straight.CheckpointPath);
        var b = PretrainingCheckpoint.ReadTensors(resumed.CheckpointPath);
        foreach (string key in a.Keys) Assert.True(a[key].bytes.SequenceEqual(b[key].bytes), $"{key} differs after the resume");
    }

    private static string[] Keys(string json) =>
        [.. System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task ResumingRefusesAMissingCheckpointOrOneFromAnotherRecipe()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = TinyRecipe() with { UNetSteps = 1, VaeSteps = 1 };
        await Assert.ThrowsAsync<ModelConfigException>(() => Trainer(recipe, temp.File("none"), resume: true).RunAsync());
        await Trainer(recipe, temp.File("ck")).RunAsync();
        var other = recipe with { Seed = recipe.Seed + 1 };
        var ex = await Assert.ThrowsAsync<ModelConfigException>(() => Trainer(other, temp.File("ck"), resume: true).RunAsync());
        Assert.Contains("different recipe", ex.Message);
    }

    [Fact]
    public void BadRecipesOptionsAndSourcesAreRejectedWithTheirName()
    {
        Assert.Contains("VaeSteps", Assert.Throws<ArgumentException>(() => (TinyRecipe() with { VaeSteps = -1 }).Validate()).Message);
        Assert.Contains("CaptionDropout", Assert.Throws<ArgumentException>(() => (TinyRecipe() with { CaptionDropout = 1.5 }).Validate()).Message);
        var mismatched = TinyRecipe() with { Architecture = ShapesModelArchitecture.Tiny with { UNet = ShapesModelArchitecture.Tiny.UNet with { CrossAttentionDim = [8, 8, 8] } } };
        Assert.Contains("cross_attention_dim", Assert.Throws<ArgumentException>(() => mismatched.Validate()).Message);
        var source = new ShapesWorldSource(ShapesWorld.Default, 1, 64);
        var options = new PretrainingOptions { CheckpointDirectory = "ck", TokenizerFolder = Tokenizer };
        Assert.Throws<ArgumentException>(() => new ShapesPretrainer(TinyRecipe(), source, options));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesPretrainer(TinyRecipe(), new ShapesWorldSource(ShapesWorld.Default, 1, 32), options with { IntraOpThreads = 0 }));
    }

    [Fact]
    public void ARecipeReadBackFromItsJsonHasTheSameFingerprintAndMisspeltPropertiesAreRefused()
    {
        var recipe = TinyRecipe(seed: 3) with { UNetLearningRate = 2e-3, CaptionDropout = 0.2 };
        var read = PretrainingRecipe.FromJson(recipe.ToJson());
        Assert.Equal(recipe.Fingerprint(), read.Fingerprint());
        Assert.Equal(2e-3, read.UNetLearningRate);
        Assert.Equal(ShapesModelArchitecture.Tiny.UNet.BlockOutChannels, read.Architecture.UNet.BlockOutChannels);
        // A partial recipe keeps the default recipe's other values.
        Assert.Equal(PretrainingRecipe.Default with { UNetSteps = 7 }, PretrainingRecipe.FromJson("""{ "unet_steps": 7 }""") with { Architecture = PretrainingRecipe.Default.Architecture });
        Assert.Equal(PretrainingRecipe.Default with { UNetSteps = 7 }, PretrainingRecipe.FromJson("""{ "u_net_steps": 7 }""") with { Architecture = PretrainingRecipe.Default.Architecture });
        Assert.Contains("u_net_step", Assert.Throws<ArgumentException>(() => PretrainingRecipe.FromJson("""{ "u_net_step": 7 }""")).Message);
        Assert.Contains("CaptionDropout", Assert.Throws<ArgumentException>(() => PretrainingRecipe.FromJson("""{ "caption_dropout": 2 }""")).Message);
        Assert.Throws<ArgumentException>(() => PretrainingRecipe.FromJson("{"));
    }

    [Fact]
    public async Task ARunStartedFromATrainedVaeFolderKeepsThatVaeAndTrainsTheDenoiser()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var first = await Trainer(TinyRecipe(seed: 8) with { UNetSteps = 1 }, temp.File("first")).RunAsync();
        ShapesModelExporter.Export(first.CheckpointPath, Tokenizer, temp.File("model"));
        var recipe = TinyRecipe(seed: 9) with { VaeSteps = 0 };
        var options = new PretrainingOptions { CheckpointDirectory = temp.File("second"), TokenizerFolder = Tokenizer, VaeFolder = Path.Combine(temp.File("model"), "vae") };
        var second = await new ShapesPretrainer(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize), options).RunAsync();

        var a = PretrainingCheckpoint.ReadTensors(first.CheckpointPath);
        var b = PretrainingCheckpoint.ReadTensors(second.CheckpointPath);
        var vaeKeys = a.Keys.Where(k => k.StartsWith(ShapesNetworks.VaePrefix, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(vaeKeys);
        // The exported VAE is written in half precision, so the copy equals the trained VAE to fp16 rounding.
        foreach (string key in vaeKeys) Assert.True(a[key].allclose(b[key], rtol: 1e-3, atol: 1e-3), $"{key} is not the folder's VAE");
        Assert.Equal(3, second.State.UNetLosses.Count);
        Assert.Empty(second.State.VaeLosses);
        Assert.Contains("VaeSteps = 0", Assert.Throws<ArgumentException>(() => new ShapesPretrainer(TinyRecipe(), new ShapesWorldSource(ShapesWorld.Default, 1, 32), options)).Message);
    }

    [Fact]
    public async Task ARunContinuedFromAModelFolderStartsFromAllThreeNetworksAndTheFoldersLatentScale()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var first = await Trainer(TinyRecipe(seed: 8) with { UNetSteps = 2 }, temp.File("first")).RunAsync();
        string model = temp.File("model");
        ShapesModelExporter.Export(first.CheckpointPath, Tokenizer, model);
        var options = new PretrainingOptions { CheckpointDirectory = temp.File("second"), TokenizerFolder = Tokenizer, InitialModelFolder = model };
        // No U-Net steps: the final checkpoint holds exactly what was loaded.
        var recipe = TinyRecipe(seed: 9) with { VaeSteps = 0, UNetSteps = 0 };
        var loaded = await new ShapesPretrainer(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize), options).RunAsync();

        var a = PretrainingCheckpoint.ReadTensors(first.CheckpointPath);
        var b = PretrainingCheckpoint.ReadTensors(loaded.CheckpointPath);
        foreach (string prefix in new[] { ShapesNetworks.VaePrefix, ShapesNetworks.TextEncoderPrefix, ShapesNetworks.UNetPrefix })
        {
            var keys = a.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(keys);
            // The folder holds half precision, so the copy equals the trained networks to fp16 rounding.
            foreach (string key in keys) Assert.True(a[key].allclose(b[key], rtol: 1e-3, atol: 1e-3), $"{key} is not the folder's");
        }
        // A fresh run of seed 9 would not have these weights: the text encoder's token table differs from a fresh one.
        var fresh = await Trainer(recipe with { VaeSteps = 1 }, temp.File("fresh")).RunAsync();
        string table = ShapesNetworks.TextEncoderPrefix + "text_model.embeddings.token_embedding.weight";
        Assert.False(PretrainingCheckpoint.ReadTensors(fresh.CheckpointPath)[table].allclose(b[table], rtol: 1e-3, atol: 1e-3));
        // The scale the folder's denoiser was trained with, as written (to float32) in its vae/config.json.
        Assert.Equal(first.State.ScalingFactor, loaded.State.ScalingFactor, 6);

        var continued = await new ShapesPretrainer(recipe with { UNetSteps = 2 }, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize),
            options with { CheckpointDirectory = temp.File("third") }).RunAsync();
        Assert.Equal(2, continued.State.UNetLosses.Count);
        Assert.All(continued.State.UNetLosses, l => Assert.True(double.IsFinite(l) && l > 0));
    }

    [Fact]
    public void AModelFolderToContinueFromIsRefusedTogetherWithAVaeFolder()
    {
        var options = new PretrainingOptions { CheckpointDirectory = "ck", TokenizerFolder = Tokenizer, InitialModelFolder = "model" };
        Assert.Contains("InitialModelFolder", Assert.Throws<ArgumentException>(() => (options with { VaeFolder = "vae" }).Validate()).Message);
    }

    [Fact]
    public async Task AModelFolderOfAnotherArchitectureIsRefusedNamingTheFolder()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var options = new PretrainingOptions { CheckpointDirectory = temp.File("ck"), TokenizerFolder = Tokenizer, InitialModelFolder = TestPaths.TinySd1 };
        var recipe = TinyRecipe() with { VaeSteps = 0 };
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => new ShapesPretrainer(recipe, new ShapesWorldSource(ShapesWorld.Default, 1, recipe.Architecture.ImageSize), options).RunAsync());
        Assert.True(ex is ArgumentException or ModelConfigException, ex.GetType().Name);
        Assert.Contains(TestPaths.TinySd1, ex.Message);
    }

    [Fact]
    public void TheLearningRateWarmsUpLinearlyThenFollowsACosineToItsFloor()
    {
        var recipe = PretrainingRecipe.Default with { WarmupSteps = 10, FinalLearningRateFraction = 0.1 };
        Assert.Equal(0.1, recipe.LearningRateAt(1.0, 0, 110), 12);
        Assert.Equal(1.0, recipe.LearningRateAt(1.0, 9, 110), 12);
        Assert.Equal(1.0, recipe.LearningRateAt(1.0, 10, 110), 12);
        Assert.Equal(0.55, recipe.LearningRateAt(1.0, 60, 110), 12);
        Assert.Equal(0.1, recipe.LearningRateAt(1.0, 110, 110), 12);
    }

}
