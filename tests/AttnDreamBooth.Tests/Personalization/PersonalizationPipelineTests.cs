using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class PersonalizationPipelineTests
{

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task EachStageChangesExactlyItsParameters(int stage)
    {
        var plan = TinyPipeline.Plan(stage == 1 ? 2 : 0, stage == 2 ? 2 : 0, stage == 3 ? 2 : 0);
        using var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options());
        var unetBefore = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var textBefore = TinyPipeline.Snapshot(pipeline.Components.TextEncoder);
        var vaeBefore = TinyPipeline.Snapshot(pipeline.Components.Vae);

        var model = await pipeline.TrainAsync(TinyPipeline.Dog());

        var trainedStage = (TrainingStage)stage;
        foreach (var (name, after) in pipeline.Components.UNet.state_dict())
        {
            bool changed = !TinyPipeline.BitEqual(unetBefore[name], after);
            bool expected = stage != 1 && StageParameters.IsTrained(trainedStage, name);
            Assert.True(changed == expected, $"stage {stage}: U-Net tensor {name} {(changed ? "changed" : "did not change")}");
        }
        Assert.All(pipeline.Components.TextEncoder.state_dict(), p => Assert.True(TinyPipeline.BitEqual(textBefore[p.Key], p.Value), $"text encoder {p.Key} changed"));
        Assert.All(pipeline.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(vaeBefore[p.Key], p.Value), $"VAE {p.Key} changed"));

        // The concept row starts as the category word's embedding and only stage 1 moves it.
        var dogId = pipeline.Components.Tokenizer.EncodeWithoutSpecialTokens("dog")[0];
        var initial = pipeline.Components.TextEncoder.TokenEmbeddingWeight[dogId];
        bool embeddingChanged = !TinyPipeline.BitEqual(initial, model.EmbeddingVector());
        Assert.Equal(stage == 1, embeddingChanged);

        Assert.All(pipeline.Components.UNet.parameters(), p => Assert.Null(p.grad));
        Assert.All(pipeline.Components.TextEncoder.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public async Task ProgressReportsEveryStepWithBothLossParts()
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(2, 2, 1), TinyPipeline.Options());
        var progress = new RecordingProgress<TrainingProgress>();
        await pipeline.TrainAsync(TinyPipeline.Dog(), progress);

        Assert.Equal(5, progress.Items.Count);
        Assert.Equal([TrainingStage.Embedding, TrainingStage.Embedding, TrainingStage.CrossAttention, TrainingStage.CrossAttention, TrainingStage.UNet], progress.Items.Select(p => p.Stage));
        Assert.Equal([1, 2, 1, 2, 1], progress.Items.Select(p => p.Step));
        Assert.Equal([1, 2, 3, 4, 5], progress.Items.Select(p => p.GlobalStep));
        Assert.All(progress.Items, p =>
        {
            Assert.True(p.MseLoss > 0 && double.IsFinite(p.MseLoss));
            Assert.True(p.AttentionLoss > 0 && double.IsFinite(p.AttentionLoss), $"stage {p.Stage} attention loss {p.AttentionLoss}");
            Assert.Equal(p.MseLoss + p.AttentionLoss, p.Loss, 12);
            Assert.Equal(5, p.TotalSteps);
        });
        Assert.Equal(1e-3, progress.Items[0].LearningRate);
        Assert.Equal(2e-5, progress.Items[2].LearningRate);
        Assert.NotNull(progress.Items[^1].EstimatedRemaining);
    }

    [Fact]
    public void AttentionTermAloneMovesTheConceptEmbeddingInStageOne()
    {
        using var components = StableDiffusionComponents.Load(TestPaths.TinySd1);
        using var concept = ConceptEmbedding.Create(components.Tokenizer, components.TextEncoder, ConceptToken.New("new_concept_v0", "dog"));
        concept.Weight.requires_grad = true;
        using var scheduler = DdpmScheduler.FromConfig(components.SchedulerConfig);
        using var objective = new PersonalizationObjective(components, concept, scheduler);
        var generator = new Generator(11);
        var ids = components.Tokenizer.EncodeToTensor(["a photo of a new_concept_v0 dog", "a photo of a new_concept_v0 dog"]);
        var v = TokenPositions.FindFirst(ids, concept.TokenIds[0]);
        var c = TokenPositions.FindCategory(ids, v, components.Tokenizer.EncodeWithoutSpecialTokens("dog")[0]);
        var latents = randn([2, 4, 32, 32], generator: generator);
        var noise = randn([2, 4, 32, 32], generator: generator);
        var batch = new TrainingBatch(latents, noise, tensor(new long[] { 10, 900 }), ids, v, c);

        var loss = objective.Compute(batch, AttentionRegularizationWeights.EmbeddingStage);
        Assert.True(loss.Attention > 0);
        loss.AttentionTerm.backward();
        var grad = concept.Weight.grad;
        Assert.NotNull(grad);
        Assert.True(grad!.abs().sum().item<float>() > 0, "the attention term's gradient must reach the [V] embedding");
        Assert.All(components.UNet.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public async Task SaveLoadGenerateReproducesTheImages()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var options = new GenerationOptions { Steps = 3, Seed = 3, BatchSize = 2, HeatmapTokens = ["{}", "dog"], HeatmapResolution = 8 };
        IReadOnlyList<GeneratedImage> first;
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 1, 1), TinyPipeline.Options()))
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog());
            first = await pipeline.GenerateAsync("a {} on the beach", options);
            await model.SaveAsync(dir.File("concept"));
        }
        Assert.True(File.Exists(dir.File("concept/learned_embeds.safetensors")));
        Assert.True(File.Exists(dir.File("concept/unet/diffusion_pytorch_model.safetensors")));
        Assert.True(File.Exists(dir.File("concept/unet/config.json")));
        Assert.True(File.Exists(dir.File("concept/attndreambooth.json")));

        using var fresh = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var loaded = await PersonalizedModel.LoadAsync(dir.File("concept"), fresh);
        Assert.Equal("new_concept_v0", loaded.Token);
        Assert.Equal("dog", loaded.Category);
        var second = await fresh.GenerateAsync("a {} on the beach", options);

        Assert.Equal(2, second.Count);
        for (int i = 0; i < first.Count; i++)
        {
            Assert.Equal("a new_concept_v0 dog on the beach", second[i].Prompt);
            Assert.Equal(first[i].Image.Pixels, second[i].Image.Pixels);
            // "{}" in HeatmapTokens is stored under the identifier.
            Assert.Equal(first[i].Heatmaps["new_concept_v0"].Values, second[i].Heatmaps["new_concept_v0"].Values);
            Assert.All(second[i].Heatmaps.Values, h => Assert.All(h.Values, x => Assert.InRange(x, 0f, 1f)));
            Assert.NotEmpty(second[i].EncodeHeatmapOverlayPng("dog"));
        }
        Assert.Equal(3, first[0].Seed);
        Assert.Equal(4, first[1].Seed);
        Assert.NotEqual(first[0].Image.Pixels, first[1].Image.Pixels);
    }

    [Fact]
    public async Task CancellationKeepsTheLastCheckpointAndResumeMatchesAnUninterruptedRun()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var plan = TinyPipeline.Plan(2, 2, 2);
        byte[] reference;
        using (var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options()))
        {
            await pipeline.TrainAsync(TinyPipeline.Dog());
            reference = Fingerprint(pipeline);
        }

        using var cts = new CancellationTokenSource();
        using (var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options(dir.File("ckpt"))))
        {
            var progress = new RecordingProgress<TrainingProgress>(p => { if (p.GlobalStep == 3) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), progress, cts.Token));
            Assert.Equal(3, progress.Items.Count);
            Assert.Null(pipeline.Concept);
        }
        var latest = TrainingCheckpoint.Latest(dir.File("ckpt"));
        Assert.NotNull(latest);
        var (state, _) = TrainingCheckpoint.Read(latest!);
        Assert.Equal(3, state.GlobalStep);
        Assert.Equal((int)TrainingStage.CrossAttention, state.Stage);
        Assert.Equal(1, state.StepInStage);

        using (var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan)
                   .WithTrainingOptions(TinyPipeline.Options(dir.File("ckpt"))).ResumeFrom(dir.File("ckpt")).Build())
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog());
            Assert.Equal(6, model.LossHistory.Count);
            Assert.Equal(reference, Fingerprint(pipeline));
        }
    }

    [Fact]
    public async Task ACheckpointOfAnotherRunIsRefused()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options(dir.File("ckpt"), seed: 1)))
        {
            await pipeline.TrainAsync(TinyPipeline.Dog());
        }
        using var other = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options(dir.File("ckpt"), seed: 2));
        // The folder belongs to the first run: refused before anything is read or written, naming the way out.
        var error = await Assert.ThrowsAsync<AttnDreamBooth.IO.OutputFolderException>(() => other.TrainAsync(TinyPipeline.Dog(), resumeFrom: dir.File("ckpt")));
        Assert.Contains("another run", error.Message);
        Assert.Contains("OverwriteOtherRuns", error.Message);
    }

    [Fact]
    public async Task NonFiniteLossStopsWithStageAndStepAndKeepsTheLastCheckpoint()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(3, 0, 0), TinyPipeline.Options(dir.File("ckpt")));
        var convIn = pipeline.Components.UNet.state_dict()["conv_in.weight"];
        var progress = new RecordingProgress<TrainingProgress>(p =>
        {
            if (p.GlobalStep == 2)
            {
                using var _ = no_grad();
                convIn[0, 0, 0, 0].fill_(Kept(float.NaN));
            }
        });
        var error = await Assert.ThrowsAsync<NonFiniteValuesException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), progress));
        Assert.Equal(1, error.Stage);
        Assert.Equal(3, error.Step);
        Assert.Contains("stage 1", error.Message);
        Assert.Contains("step 3", error.Message);
        Assert.NotNull(error.LastCheckpoint);
        var (state, tensors) = TrainingCheckpoint.Read(error.LastCheckpoint!);
        Assert.Equal(2, state.GlobalStep);
        Assert.True(tensors["concept.embedding"].isfinite().all().item<bool>());
    }

    [Fact]
    public async Task BadImagesAreRejectedBeforeAnyTraining()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var photos = Directory.GetFiles(TinyPipeline.DogPhotos, "*.jpg").Order(StringComparer.Ordinal).Take(2).ToList();
        File.WriteAllBytes(dir.File("broken.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, (byte)'J', (byte)'F', 1, 2, 3]);
        photos.Add(dir.File("broken.jpg"));
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 1, 1), TinyPipeline.Options(dir.File("ckpt")));
        var before = TinyPipeline.Snapshot(pipeline.Components.UNet);

        var error = await Assert.ThrowsAsync<InvalidImageException>(() => pipeline.TrainAsync(Concept.FromFiles(photos, "dog")));

        Assert.Contains("broken.jpg", error.Message);
        Assert.False(Directory.Exists(dir.File("ckpt")));
        Assert.All(pipeline.Components.UNet.state_dict(), p => Assert.True(TinyPipeline.BitEqual(before[p.Key], p.Value)));
    }

    [Fact]
    public async Task APipelineTrainsOnceAndBraceExpansionNeedsAConcept()
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options());
        Assert.Throws<InvalidOperationException>(() => pipeline.ExpandPrompt("a {} dog"));
        Assert.Equal("a plain prompt", pipeline.ExpandPrompt("a plain prompt"));
        await pipeline.TrainAsync(TinyPipeline.Dog());
        Assert.Equal("a new_concept_v0 dog in the snow", pipeline.ExpandPrompt("a {} in the snow"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.TrainAsync(TinyPipeline.Dog()));
    }

    [Fact]
    public void MissingCudaRuntimeGivesAClearError()
    {
        var builder = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1);
        if (cuda.is_available())
        {
            Assert.Same(builder, builder.OnDevice("cuda"));
            return;
        }
        var error = Assert.Throws<InvalidOperationException>(() => builder.OnDevice("cuda"));
        Assert.Contains("CUDA", error.Message);
        Assert.Contains("TorchSharp-cpu", error.Message);
    }

    [Fact]
    public async Task VPredictionModelTrainsAndGenerates()
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 1, 1), TinyPipeline.Options(), TestPaths.TinySd2);
        Assert.Equal(PredictionType.VPrediction, pipeline.Components.SchedulerConfig.PredictionType);
        var progress = new RecordingProgress<TrainingProgress>();
        await pipeline.TrainAsync(TinyPipeline.Dog(), progress);
        Assert.Equal(3, progress.Items.Count);
        var images = await pipeline.GenerateAsync("a {}", new GenerationOptions { Steps = 2, Sampler = "ddim", Width = 64, Height = 48 });
        Assert.Equal(64, images[0].Image.Width);
        Assert.Equal(48, images[0].Image.Height);
    }

    [Fact]
    public async Task GradientAccumulationAndValidationRendersAreReported()
    {
        var plan = TinyPipeline.Plan(2, 0, 0).With(TrainingStage.Embedding, s => s with { GradientAccumulationSteps = 2, MaxGradNorm = 1.0 });
        var options = TinyPipeline.Options() with
        {
            ValidationPrompts = ["a photo of {}"],
            ValidationInterval = 2,
            ValidationGeneration = new GenerationOptions { Steps = 2, Seed = 9 },
        };
        using var pipeline = TinyPipeline.Build(plan, options);
        var progress = new RecordingProgress<TrainingProgress>();
        await pipeline.TrainAsync(TinyPipeline.Dog(), progress);

        Assert.Equal(2, progress.Items.Count);
        Assert.Null(progress.Items[0].ValidationImages);
        var renders = progress.Items[1].ValidationImages;
        Assert.NotNull(renders);
        Assert.Single(renders!);
        Assert.Equal("a photo of new_concept_v0 dog", renders![0].Prompt);
        Assert.Equal(pipeline.Components.DefaultResolution, renders[0].Image.Width);
    }

    [Fact]
    public async Task FreshAugmentationEveryStepIsDeterministicPerSeed()
    {
        var options = TinyPipeline.Options() with
        {
            Data = new TrainingDataOptions { FreshAugmentationEveryStep = true, Images = new ConceptImageOptions { Resolution = 0 } },
        };
        var losses = new List<IReadOnlyList<double>>();
        for (int run = 0; run < 2; run++)
        {
            using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(2, 1, 0), options);
            var model = await pipeline.TrainAsync(TinyPipeline.Dog());
            losses.Add(model.LossHistory.ToArray());
        }
        Assert.Equal(3, losses[0].Count);
        Assert.Equal(losses[0], losses[1]);
    }

    [Fact]
    public async Task MemoryOptionsKeepTrainablesFloat32AndRestoreExactFrozenWeights()
    {
        const string attn2 = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight";
        var plan = TinyPipeline.Plan(1, 2, 0);
        double fp32FirstLoss;
        using (var plain = TinyPipeline.Build(plan, TinyPipeline.Options()))
        {
            var progress = new RecordingProgress<TrainingProgress>();
            await plain.TrainAsync(TinyPipeline.Dog(), progress);
            fp32FirstLoss = progress.Items[0].Loss;
        }

        var options = TinyPipeline.Options() with { GradientCheckpointing = true, FrozenWeightsDType = ScalarType.BFloat16, ReleaseVaeDuringTraining = true };
        using var pipeline = TinyPipeline.Build(plan, options);
        var unetBefore = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var vaeBefore = TinyPipeline.Snapshot(pipeline.Components.Vae);
        var during = new List<(TrainingStage Stage, ScalarType Frozen, ScalarType Attn2, bool Checkpointing)>();
        var lean = new RecordingProgress<TrainingProgress>(p =>
        {
            var state = pipeline.Components.UNet.state_dict();
            during.Add((p.Stage, state["conv_in.weight"].dtype, state[attn2].dtype, pipeline.Components.UNet.GradientCheckpointing));
        });
        await pipeline.TrainAsync(TinyPipeline.Dog(), lean);

        // Stage 1 holds the whole frozen U-Net in bf16; stage 2 trains attn2 in float32 while the rest stays bf16.
        Assert.Equal(
            [(TrainingStage.Embedding, ScalarType.BFloat16, ScalarType.BFloat16, true),
             (TrainingStage.CrossAttention, ScalarType.BFloat16, ScalarType.Float32, true),
             (TrainingStage.CrossAttention, ScalarType.BFloat16, ScalarType.Float32, true)],
            during);
        Assert.True(Math.Abs(lean.Items[0].Loss - fp32FirstLoss) <= 0.05 * fp32FirstLoss, $"bf16 frozen weights: first loss {lean.Items[0].Loss} vs fp32 {fp32FirstLoss}");
        Assert.False(pipeline.Components.UNet.GradientCheckpointing);
        foreach (var (name, after) in pipeline.Components.UNet.state_dict())
        {
            Assert.Equal(ScalarType.Float32, after.dtype);
            bool changed = !TinyPipeline.BitEqual(unetBefore[name], after);
            Assert.True(changed == StageParameters.IsTrained(TrainingStage.CrossAttention, name), $"{name} {(changed ? "changed" : "unchanged")}");
        }
        Assert.All(pipeline.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(vaeBefore[p.Key], p.Value), $"VAE {p.Key} after reload"));
        var images = await pipeline.GenerateAsync("a {}", new GenerationOptions { Steps = 2 });
        Assert.Single(images);
    }

    [Fact]
    public async Task CliReportsAMissingCudaRuntimeClearly()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var (console, output) = AttnDreamBooth.Tests.Cli.CapturedConsole.Create();
        int exit = await AttnDreamBooth.Cli.CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", dir.File("out"), "--device", "cuda", "--steps", "1,1,1"],
            console);
        if (cuda.is_available())
        {
            Assert.Equal(0, exit);
            return;
        }
        Assert.Equal(2, exit);
        Assert.Contains("CUDA", output.ToString());
        Assert.False(Directory.Exists(dir.File("out/concept")));
    }

    /// <summary>The concept row and every U-Net tensor, as bytes.</summary>
    internal static byte[] Fingerprint(PersonalizationPipeline pipeline)
    {
        using var stream = new MemoryStream();
        stream.Write(pipeline.Concept!.EmbeddingVector().bytes);
        foreach (var (_, t) in pipeline.Components.UNet.state_dict().OrderBy(p => p.Key, StringComparer.Ordinal)) stream.Write(t.detach().cpu().contiguous().bytes);
        return stream.ToArray();
    }
}
