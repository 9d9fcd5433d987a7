using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The U-Net phase's weight average (<see cref="PretrainingRecipe.UNetEmaDecay"/>): its arithmetic, its resume and
/// what the model folder receives.</summary>
[Collection(PretrainingCollection.Name)]
public sealed class WeightAverageTests
{
    [Fact]
    public void TheAverageFollowsTheWarmedUpDecayStepByStep()
    {
        Assert.Equal(0.1, WeightAverage.DecayAt(0.999, 0), 12);
        Assert.Equal(11.0 / 20.0, WeightAverage.DecayAt(0.999, 10), 12);
        Assert.Equal(0.999, WeightAverage.DecayAt(0.999, 100_000), 12);
        Assert.Equal(0.5, WeightAverage.DecayAt(0.5, 10), 12);

        using var weight = new TorchSharp.Modules.Parameter(torch.tensor(new float[] { 1, -2 }));
        using var average = new WeightAverage([("w", weight)], 0.9, stored: null);
        double expected0 = 1, expected1 = -2;
        for (int n = 0; n < 30; n++)
        {
            using (torch.no_grad()) weight.add_(Kept(0.5f), One);
            average.Update(n);
            double d = WeightAverage.DecayAt(0.9, n);
            expected0 = d * expected0 + (1 - d) * weight[0].item<float>();
            expected1 = d * expected1 + (1 - d) * weight[1].item<float>();
        }
        var averaged = average.Tensors().Single();
        Assert.Equal("ema.w", averaged.Key);
        Assert.Equal(expected0, averaged.Value[0].item<float>(), 4);
        Assert.Equal(expected1, averaged.Value[1].item<float>(), 4);
        // Behind the weights, which moved by +0.5 a step: the average lags them.
        Assert.True(averaged.Value[0].item<float>() < weight[0].item<float>() - 1);
    }

    [Fact]
    public void AStoredAverageOfAnotherShapeOrNoneIsRefusedNamingTheTensor()
    {
        using var weight = new TorchSharp.Modules.Parameter(torch.zeros(3));
        using var wrong = torch.zeros(4);
        var e = Assert.Throws<ArgumentException>(() => new WeightAverage([("unet.w", weight)], 0.9, new Dictionary<string, torch.Tensor> { ["ema.unet.w"] = wrong }));
        Assert.Contains("ema.unet.w", e.Message);
        e = Assert.Throws<ArgumentException>(() => new WeightAverage([("unet.w", weight)], 0.9, new Dictionary<string, torch.Tensor>()));
        Assert.Contains("lacks the weight average 'ema.unet.w'", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WeightAverage([("unet.w", weight)], 1.0, null));
    }

    [Fact]
    public void TheDecayIsValidatedAndLeftOutOfTheJsonWhenOff()
    {
        Assert.DoesNotContain("ema", ShapesPretrainerTests.TinyRecipe().ToJson());
        var recipe = ShapesPretrainerTests.TinyRecipe() with { UNetEmaDecay = 0.99 };
        Assert.Contains("\"unet_ema_decay\": 0.99", recipe.ToJson());
        Assert.Equal(recipe, PretrainingRecipe.FromJson(recipe.ToJson()) with { Architecture = recipe.Architecture });
        Assert.NotEqual(recipe.Fingerprint(), ShapesPretrainerTests.TinyRecipe().Fingerprint());
        foreach (double bad in new[] { -0.1, 1.0, double.NaN })
        {
            var e = Assert.Throws<ArgumentException>(() => (recipe with { UNetEmaDecay = bad }).Validate());
            Assert.Contains("unet_ema_decay", e.Message);
        }
    }

    [Fact]
    public void TheAveragedContinuationRecipeIsTheDocumentedOneSpeltAsRecipesAreWritten()
    {
        // The dilated continuation of the shipped model, on a seed no earlier run drew its batches from, with an average.
        var recipe = PretrainingRecipe.Default with
        {
            Seed = 20261207, VaeSteps = 0, ObjectLossWeight = 4, ObjectLossDilation = 1, Scheduler = new ShapesSchedulerSettings { ZeroTerminalSnr = true },
            UNetSteps = 1500, UNetLearningRate = 3e-4, UNetEmaDecay = 0.999,
        };
        string json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes", "continue-1500-dilated-ema.json"));
        Assert.Equal(recipe.ToJson(), json.TrimEnd());
        Assert.Equal(recipe.Fingerprint(), PretrainingRecipe.FromJson(json).Fingerprint());
    }

    [Fact]
    public async Task AnInterruptedRunResumesItsAverageBitIdenticallyAndTheFolderReceivesTheAverage()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = ShapesPretrainerTests.TinyRecipe(seed: 12) with { UNetSteps = 4, UNetEmaDecay = 0.9 };
        var straight = await ShapesPretrainerTests.Trainer(recipe, temp.File("straight")).RunAsync();

        await ShapesPretrainerTests.InterruptAfterAsync(recipe, temp.File("resumed"), recipe.VaeSteps + 2);
        var resumed = await ShapesPretrainerTests.Trainer(recipe, temp.File("resumed"), resume: true).RunAsync();
        ShapesPretrainerTests.AssertSameRun(straight, resumed);

        var tensors = PretrainingCheckpoint.ReadTensors(straight.CheckpointPath);
        var parameterNames = tensors.Keys.Where(k => k.StartsWith("unet.", StringComparison.Ordinal) || k.StartsWith("text_encoder.", StringComparison.Ordinal))
            .Where(k => tensors.ContainsKey("ema." + k)).ToList();
        Assert.Contains("ema.unet.conv_in.weight", tensors.Keys);
        Assert.Contains("ema.text_encoder.text_model.embeddings.token_embedding.weight", tensors.Keys);
        Assert.DoesNotContain(tensors.Keys, k => k.StartsWith("ema.vae.", StringComparison.Ordinal));
        // After four steps at decays 0.1, 0.18, 0.25, 0.31 the average is not the last weights.
        Assert.Contains(parameterNames, k => !tensors[k].allclose(tensors["ema." + k], rtol: 0, atol: 1e-7));

        string averaged = temp.File("averaged"), last = temp.File("last");
        ShapesModelExporter.Export(straight.CheckpointPath, ShapesPretrainerTests.Tokenizer, averaged, torch.ScalarType.Float32);
        ShapesModelExporter.Export(straight.CheckpointPath, ShapesPretrainerTests.Tokenizer, last, torch.ScalarType.Float32, lastWeights: true);
        using var averagedModel = StableDiffusionComponents.Load(averaged);
        using var lastModel = StableDiffusionComponents.Load(last);
        foreach (var (name, p) in averagedModel.UNet.named_parameters())
            Assert.True(p.equal(tensors["ema.unet." + name]).all().item<bool>(), $"unet {name} is not the average");
        foreach (var (name, p) in lastModel.UNet.named_parameters())
            Assert.True(p.equal(tensors["unet." + name]).all().item<bool>(), $"unet {name} is not the last weight");
        foreach (var (name, p) in averagedModel.TextEncoder.named_parameters())
            Assert.True(p.equal(tensors["ema.text_encoder." + name]).all().item<bool>(), $"text encoder {name} is not the average");
        Assert.Contains("\"denoiser_weights\": \"average\"", File.ReadAllText(Path.Combine(averaged, ShapesModelManifest.FileName)));
        Assert.Contains("\"denoiser_weights\": \"last\"", File.ReadAllText(Path.Combine(last, ShapesModelManifest.FileName)));
        Assert.Empty(ShapesModelManifest.Verify(averaged));
        foreach (var t in tensors.Values) t.Dispose();
    }
}
