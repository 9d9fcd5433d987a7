using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Tests.IO;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>Export of a pretrained checkpoint: the diffusers layout, half-precision weights, the manifest, and loading by the pipeline.</summary>
[Collection(PretrainingCollection.Name)]
public sealed class ShapesModelExportTests : IAsyncLifetime
{
    private static readonly string Tokenizer = Path.Combine(TestPaths.TinySd1, "tokenizer");
    private readonly TempDirectory _temp = TestPaths.CreateTempDirectory();
    private PretrainingResult _result = null!;

    public async Task InitializeAsync()
    {
        var recipe = ShapesPretrainerTests.TinyRecipe() with { VaeSteps = 1, UNetSteps = 1 };
        _result = await new ShapesPretrainer(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, 32),
            new PretrainingOptions { CheckpointDirectory = _temp.File("ck"), TokenizerFolder = Tokenizer }).RunAsync();
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task TheExportIsADiffusersFolderInHalfPrecisionThatThePipelineLoadsAndSamples()
    {
        string model = _temp.File("model");
        var files = ShapesModelExporter.Export(_temp.File("ck"), Tokenizer, model);
        Assert.Equal(
            ["model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
             "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
             "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors"],
            files.Select(f => f.Path));
        using (var unetFile = SafetensorsFile.Open(Path.Combine(model, "unet", "diffusion_pytorch_model.safetensors")))
        {
            Assert.All(unetFile.Entries.Values, e => Assert.Equal(TorchSharp.torch.ScalarType.Float16, e.ScalarType));
        }
        var index = DiffusersFolder.Open(model).Index;
        Assert.Equal("StableDiffusionPipeline", index.ClassName);
        Assert.Equal(["scheduler", "text_encoder", "tokenizer", "unet", "vae"], index.Components.Keys.Order(StringComparer.Ordinal));
        var architecture = ShapesModelArchitecture.Tiny;
        var unet = UNetConfig.Load(Path.Combine(model, "unet", "config.json"));
        Assert.Equal(architecture.UNet.BlockOutChannels, unet.BlockOutChannels);
        Assert.Equal(architecture.UNet.DownBlockTypes, unet.DownBlockTypes);
        Assert.Equal(architecture.UNet.AttentionHeadDim, unet.AttentionHeadDim);
        Assert.Equal(architecture.UNet.CrossAttentionDim, unet.CrossAttentionDim);
        var vae = AutoencoderKLConfig.Load(Path.Combine(model, "vae", "config.json"));
        Assert.Equal(_result.State.ScalingFactor, vae.ScalingFactor, 12);
        Assert.Equal(architecture.Vae.BlockOutChannels, vae.BlockOutChannels);
        Assert.Equal(architecture.TextEncoder, ClipTextConfig.Load(Path.Combine(model, "text_encoder", "config.json")));

        using var pipeline = PersonalizationPipeline.FromPretrained(model).Build();
        Assert.Equal(32, pipeline.Components.DefaultResolution);
        var images = await pipeline.GenerateAsync("a red star on snow", new GenerationOptions { Steps = 2, Seed = 3, GuidanceScale = 3 });
        Assert.Equal(32, images[0].Image.Width);
        Assert.Contains(images[0].Image.Pixels, p => p != images[0].Image.Pixels[0]);
    }

    [Fact]
    public void TheManifestRecordsTheRecipeAndDetectsAChangedFile()
    {
        string model = _temp.File("model-manifest");
        var files = ShapesModelExporter.Export(_temp.File("ck"), Tokenizer, model, notes: new Dictionary<string, string> { ["command"] = "test" });
        Assert.Empty(ShapesModelManifest.Verify(model));
        Assert.Equal(files, ShapesModelManifest.ReadFiles(model));
        string text = File.ReadAllText(Path.Combine(model, ShapesModelManifest.FileName));
        Assert.Contains("\"seed\": 11", text);
        Assert.Contains("\"recipe_fingerprint\"", text);
        Assert.Contains("\"weights_dtype\": \"float16\"", text);
        Assert.Contains("unet_steps_done", SnakeCaseJson.AssertKeys(text));
        Assert.Contains("\"prediction_type\": \"v_prediction\"", text);

        string weights = Path.Combine(model, "vae", "diffusion_pytorch_model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x01;
        File.WriteAllBytes(weights, bytes);
        File.WriteAllText(Path.Combine(model, "extra.txt"), "x");
        var problems = ShapesModelManifest.Verify(model);
        Assert.Contains(problems, p => p.StartsWith("vae/diffusion_pytorch_model.safetensors: sha256", StringComparison.Ordinal));
        Assert.Contains(problems, p => p == "extra.txt: not in the manifest");
    }

    [Fact]
    public async Task AnUnfinishedRunIsOnlyExportedWhenAllowed()
    {
        var recipe = ShapesPretrainerTests.TinyRecipe() with { VaeSteps = 1, UNetSteps = 3 };
        using var cts = new CancellationTokenSource();
        var run = new ShapesPretrainer(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, 32),
            new PretrainingOptions { CheckpointDirectory = _temp.File("partial"), TokenizerFolder = Tokenizer })
            .RunAsync(new InlineProgress<PretrainingProgress>(p => { if (p.GlobalStep == 2) cts.Cancel(); }), cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        var ex = Assert.Throws<ModelConfigException>(() => ShapesModelExporter.Export(_temp.File("partial"), Tokenizer, _temp.File("m1")));
        Assert.Contains("step 1 of 3", ex.Message);
        ShapesModelExporter.Export(_temp.File("partial"), Tokenizer, _temp.File("m2"), allowIncomplete: true);
        Assert.Contains("\"complete\": false", File.ReadAllText(Path.Combine(_temp.File("m2"), ShapesModelManifest.FileName)));
    }

}
