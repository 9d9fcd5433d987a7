using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>Stages 2 and 3 training LoRA adapters (<see cref="StageOptions.Lora"/>) on the tiny SD 1.x pipeline: the base
/// weights stay frozen, the concept saves as embedding + LoRA and comes back bit-identically, it exports and imports
/// through the LoRA file paths, and half-precision frozen weights keep everything that must stay exact.</summary>
public sealed class LoraTrainingTests
{
    /// <summary>A LoRA plan for the tiny model: rank 2, a learning rate at which two steps visibly move the adapters.</summary>
    internal static StagePlan Plan(int s1, int s2, int s3, double dropout = 0) =>
        TinyPipeline.Plan(s1, s2, s3).WithLora(new LoraOptions(Rank: 2, Dropout: dropout), learningRate: 1e-3);

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task ALoraStageTrainsItsAdaptersAndLeavesEveryBaseWeightFrozen(int stage)
    {
        var plan = Plan(0, stage == 2 ? 2 : 0, stage == 3 ? 2 : 0);
        using var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options());
        var unetBefore = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var textBefore = TinyPipeline.Snapshot(pipeline.Components.TextEncoder);

        var model = await pipeline.TrainAsync(TinyPipeline.Dog());

        Assert.True(model.IsLora);
        var lora = pipeline.ConceptLora!;
        var expectedModules = stage == 2 ? LoraUNetModules.CrossAttention : LoraUNetModules.Transformer;
        var targets = LoraTargets.Select(pipeline.Components.UNet, expectedModules);
        Assert.Equal(targets, lora.Adapters.Select(a => a.ModulePath));
        Assert.False(lora.IsInstalled, "training leaves the adapters merged, without hooks");
        Assert.All(lora.Adapters, a =>
        {
            Assert.Equal(2, a.Rank);
            Assert.True(a.UpWeight.abs().max().item<float>() > 0, $"{a.ModulePath}: the adapter did not train");
            Assert.Equal(torch.ScalarType.Float32, a.DownWeight.dtype);
        });

        // Every U-Net tensor is the base one, except the wrapped layers' weights, which are exactly base + the adapter's update.
        var adapters = lora.Adapters.ToDictionary(a => a.ModulePath + ".weight");
        foreach (var (name, after) in pipeline.Components.UNet.state_dict())
        {
            if (adapters.TryGetValue(name, out var adapter))
            {
                using var delta = adapter.WeightDelta(1.0);
                using var expected = unetBefore[name].add(delta, One);
                Assert.True(TinyPipeline.BitEqual(expected, after), $"{name} is not base + LoRA update");
            }
            else
            {
                Assert.True(TinyPipeline.BitEqual(unetBefore[name], after), $"U-Net tensor {name} changed although it is frozen");
            }
        }
        Assert.All(pipeline.Components.TextEncoder.state_dict(), p => Assert.True(TinyPipeline.BitEqual(textBefore[p.Key], p.Value), $"text encoder {p.Key} changed"));
        Assert.All(pipeline.Components.UNet.parameters(), p => Assert.Null(p.grad));
        Assert.All(lora.parameters(), p => Assert.False(p.requires_grad));
    }

    [Fact]
    public async Task ALoraConceptSavesAsEmbeddingPlusLoraAndLoadsBackBitIdentically()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var options = new GenerationOptions { Steps = 3, Seed = 3, HeatmapTokens = ["{}"], HeatmapResolution = 8 };
        GeneratedImage first;
        Dictionary<string, torch.Tensor> trainedUNet;
        using (var pipeline = TinyPipeline.Build(Plan(1, 1, 1), TinyPipeline.Options()))
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog());
            first = (await pipeline.GenerateAsync("a {} on the beach", options))[0];
            trainedUNet = TinyPipeline.Snapshot(pipeline.Components.UNet);
            await model.SaveAsync(dir.File("concept"));
        }
        string concept = dir.File("concept");
        Assert.False(Directory.Exists(Path.Combine(concept, "unet")), "a LoRA concept has no U-Net folder");
        Assert.True(File.Exists(Path.Combine(concept, PersonalizedModel.LoraWeightsFile)));
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(concept, PersonalizedModel.MetadataFile))))
        {
            Assert.Equal(PersonalizedModel.LoraWeightsFile, json.RootElement.GetProperty("lora_file").GetString());
        }
        // The file is diffusers' LoRA layout, the one pipe.load_lora_weights(folder) reads by default.
        using (var file = SafetensorsFile.Open(Path.Combine(concept, PersonalizedModel.LoraWeightsFile)))
        {
            Assert.All(file.Names, n => Assert.Matches(@"^unet\..+\.lora\.(down|up)\.weight$", n));
        }

        using var fresh = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var loaded = await PersonalizedModel.LoadAsync(concept, fresh);
        Assert.True(loaded.IsLora);
        foreach (var (name, tensor) in fresh.Components.UNet.state_dict())
            Assert.True(TinyPipeline.BitEqual(trainedUNet[name], tensor), $"{name} differs after loading");
        var second = (await fresh.GenerateAsync("a {} on the beach", options))[0];
        Assert.Equal(first.Image.Pixels, second.Image.Pixels);
        Assert.Equal(first.Heatmaps["new_concept_v0"].Values, second.Heatmaps["new_concept_v0"].Values);

        // Saved again, the loaded concept writes the same adapters.
        await loaded.SaveAsync(dir.File("again"));
        using var a = SafetensorsFile.Open(Path.Combine(concept, PersonalizedModel.LoraWeightsFile));
        using var b = SafetensorsFile.Open(Path.Combine(dir.File("again"), PersonalizedModel.LoraWeightsFile));
        Assert.Equal(a.Names, b.Names);
        foreach (string name in a.Names)
        {
            using var x = a.ReadTensor(name);
            using var y = b.ReadTensor(name);
            Assert.True(TinyPipeline.BitEqual(x, y), name);
        }
    }

    [Fact]
    public async Task ALoraConceptExportsItsTrainedAdaptersAndImportsThroughTheLoraPath()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var options = new GenerationOptions { Steps = 3, Seed = 5 };
        using var pipeline = TinyPipeline.Build(Plan(1, 1, 1), TinyPipeline.Options());
        var model = await pipeline.TrainAsync(TinyPipeline.Dog());
        var inMemory = (await pipeline.GenerateAsync("a {} in the snow", options))[0].Image.Pixels;

        var result = await model.ExportAsync(dir.File("lora"), new ConceptExportOptions { Format = ConceptExportFormat.Lora });
        Assert.NotNull(result.Lora);
        Assert.True(result.Lora!.Trained, "a LoRA-trained concept exports its own adapters");
        Assert.Empty(result.Lora.NotCarried);
        Assert.Equal(pipeline.ConceptLora!.Count, result.Lora.Layers.Count);
        string loraFile = Path.Combine(result.Folder, $"{model.Token}-lora.safetensors");

        // The kohya file holds the trained adapters themselves: same rank, alpha and values.
        using (var file = SafetensorsFile.Open(loraFile))
        {
            foreach (var adapter in pipeline.ConceptLora.Adapters)
            {
                using var down = file.ReadTensor(adapter.KohyaName + ".lora_down.weight");
                using var up = file.ReadTensor(adapter.KohyaName + ".lora_up.weight");
                using var alpha = file.ReadTensor(adapter.KohyaName + ".alpha");
                Assert.True(TinyPipeline.BitEqual(adapter.DownWeight.detach(), down) && TinyPipeline.BitEqual(adapter.UpWeight.detach(), up), adapter.KohyaName);
                Assert.Equal(adapter.Alpha, alpha.item<float>());
            }
        }

        using var fresh = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var import = new ConceptImport(Path.Combine(result.Folder, $"{model.Token}.safetensors")) { LoraPath = loraFile, Category = "dog" };
        await PersonalizedModel.ImportAsync(import, fresh);
        Assert.Equal(inMemory, (await fresh.GenerateAsync("a {} in the snow", options))[0].Image.Pixels);

        // A lower rank than the adapters' asks for an approximation: extracted by SVD like a full fine-tune.
        var lower = await model.ExportAsync(dir.File("lora-rank1"), new ConceptExportOptions { Format = ConceptExportFormat.Lora, LoraRank = 1 });
        Assert.False(lower.Lora!.Trained);
        Assert.All(lower.Lora.Layers, l => Assert.Equal(1, l.Rank));
    }

    [Fact]
    public async Task HalfPrecisionFrozenWeightsKeepAdaptersFloat32AndTheBaseExact()
    {
        // Stage 2 fine-tunes the attn2 projections, stage 3 trains LoRA adapters on the feed-forward and ResNet layers
        // (3×3 "LoCon" convs included) through a bfloat16 U-Net: stage 2's weights must survive stage 3's casting.
        var plan = TinyPipeline.Plan(0, 2, 2)
            .WithLora(TrainingStage.UNet, new LoraOptions(Rank: 2), LoraUNetModules.FeedForward | LoraUNetModules.ResnetConvs)
            .With(TrainingStage.UNet, s => s with { LearningRate = 1e-3 });
        var options = TinyPipeline.Options() with { FrozenWeightsDType = torch.ScalarType.BFloat16 };
        using var pipeline = TinyPipeline.Build(plan, options);
        var before = TinyPipeline.Snapshot(pipeline.Components.UNet);

        var model = await pipeline.TrainAsync(TinyPipeline.Dog());

        Assert.False(model.IsLora, "stage 2 fine-tuned weights, so the concept is a whole U-Net");
        Assert.Null(pipeline.ConceptLora);
        var state = pipeline.Components.UNet.state_dict();
        Assert.All(state.Values, t => Assert.Equal(torch.ScalarType.Float32, t.dtype));
        var covered = LoraTargets.Select(pipeline.Components.UNet, LoraUNetModules.FeedForward | LoraUNetModules.ResnetConvs).Select(p => p + ".weight").ToHashSet();
        foreach (var (name, after) in state)
        {
            bool changed = !TinyPipeline.BitEqual(before[name], after);
            bool expected = covered.Contains(name) || StageParameters.IsTrained(TrainingStage.CrossAttention, name);
            Assert.True(changed == expected, $"{name} {(changed ? "changed" : "did not change")}");
        }
    }

    [Fact]
    public async Task LoraDropoutWithGradientCheckpointingIsRefusedBeforeAnyWork()
    {
        var options = TinyPipeline.Options() with { GradientCheckpointing = true };
        using var pipeline = TinyPipeline.Build(Plan(0, 1, 0, dropout: 0.1), options);
        var error = await Assert.ThrowsAsync<InvalidStagePlanException>(() => pipeline.TrainAsync(TinyPipeline.Dog()));
        Assert.Contains("Dropout", error.Message);
        Assert.Null(pipeline.Concept);
        // Nothing was started: the pipeline still trains.
        using var again = TinyPipeline.Build(Plan(0, 1, 0), options);
        Assert.True((await again.TrainAsync(TinyPipeline.Dog())).IsLora);
    }
}
