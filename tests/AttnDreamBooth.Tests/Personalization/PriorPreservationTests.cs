using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using TorchSharp;
using static TorchSharp.torch;
using AttnDreamBooth.Tests.IO;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class PriorPreservationTests
{

    private static PersonalizationPipeline Build(PriorPreservationOptions prior, string? cache, long seed = 7, Func<StagePlan, StagePlan>? change = null)
    {
        var plan = TinyMethods.Plan(PersonalizationMethod.DreamBooth) with { PriorPreservation = prior };
        if (change is not null) plan = change(plan);
        var options = TinyPipeline.Options(seed: seed) with { ClassImageDirectory = cache };
        return PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(options).Build();
    }

    private static async Task<(ClassImageSet Set, IReadOnlyList<ClassImageProgress> Progress)> Prepare(PriorPreservationOptions prior, string? cache)
    {
        using var pipeline = Build(prior, cache);
        var progress = new RecordingProgress<ClassImageProgress>();
        var set = await pipeline.PrepareClassImagesAsync("dog", progress);
        return (set, progress.Items);
    }

    private static Dictionary<string, (byte[] Bytes, DateTime Written)> Files(string folder) =>
        Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), f => (File.ReadAllBytes(f), File.GetLastWriteTimeUtc(f)));

    [Fact]
    public async Task Class_images_are_generated_once_and_reused_until_a_setting_changes()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string cache = dir.File("class-images");

        var (first, progress) = await Prepare(TinyMethods.Prior(count: 3), cache);
        Assert.False(first.FromCache);
        Assert.Equal(3, first.GeneratedCount);
        Assert.Equal("a photo of a dog", first.Prompt);
        Assert.Equal([2, 3], progress.Select(p => p.Completed));
        Assert.All(progress, p => Assert.False(p.FromCache));
        Assert.Equal(["class_00000.png", "class_00001.png", "class_00002.png", "class_images.json"], Files(cache).Keys.Order(StringComparer.Ordinal));
        Assert.Equal(first.Files, Enumerable.Range(0, 3).Select(i => Path.Combine(Path.GetFullPath(cache), $"class_{i:D5}.png")));
        string manifest = File.ReadAllText(Path.Combine(cache, "class_images.json"));
        Assert.Contains("sample_batch_size", SnakeCaseJson.AssertKeys(manifest));
        Assert.Contains("\"prompt\": \"a photo of a dog\"", manifest);
        Assert.Contains("\"count\": 3", manifest);
        Assert.Contains("\"seed\": 5", manifest);
        Assert.Contains(Path.GetFullPath(TestPaths.TinySd1), manifest);
        Assert.Contains("\"complete\": true", manifest);
        // Image i comes from seed 5 + i: different images.
        Assert.NotEqual(first.Images[0].Pixels, first.Images[1].Pixels);
        var written = Files(cache);

        // Same settings, new pipeline: nothing is generated or rewritten.
        var (again, againProgress) = await Prepare(TinyMethods.Prior(count: 3), cache);
        Assert.True(again.FromCache);
        Assert.Equal(0, again.GeneratedCount);
        var only = Assert.Single(againProgress);
        Assert.True(only.FromCache);
        Assert.Equal(3, only.Completed);
        var after = Files(cache);
        Assert.Equal(written.Keys.Order(), after.Keys.Order());
        foreach (var (name, file) in written)
        {
            Assert.Equal(file.Bytes, after[name].Bytes);
            Assert.Equal(file.Written, after[name].Written);
        }
        for (int i = 0; i < 3; i++) Assert.Equal(first.Images[i].Pixels, again.Images[i].Pixels);

        // Another prompt: generated again.
        var (other, _) = await Prepare(TinyMethods.Prior(count: 3, prompt: "a drawing of a {category}"), cache);
        Assert.False(other.FromCache);
        Assert.Equal(3, other.GeneratedCount);
        Assert.Equal("a drawing of a dog", other.Prompt);
        Assert.NotEqual(first.Images[0].Pixels, other.Images[0].Pixels);
        Assert.Contains("a drawing of a dog", File.ReadAllText(Path.Combine(cache, "class_images.json")));

        // Another count: generated again, and the surplus file removed; same seeds and batches give the same images.
        var (fewer, _) = await Prepare(TinyMethods.Prior(count: 2), cache);
        Assert.False(fewer.FromCache);
        Assert.Equal(2, fewer.GeneratedCount);
        Assert.False(File.Exists(Path.Combine(cache, "class_00002.png")));
        for (int i = 0; i < 2; i++) Assert.Equal(first.Images[i].Pixels, fewer.Images[i].Pixels);

        // Another seed: generated again.
        var (reseeded, _) = await Prepare(TinyMethods.Prior(count: 2, seed: 6), cache);
        Assert.Equal(2, reseeded.GeneratedCount);
        Assert.Equal(first.Images[1].Pixels, reseeded.Images[0].Pixels);
    }

    [Fact]
    public async Task A_damaged_cached_image_is_regenerated_with_its_batch_only()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string cache = dir.File("class-images");
        var (first, _) = await Prepare(TinyMethods.Prior(count: 3), cache);
        File.WriteAllBytes(Path.Combine(cache, "class_00002.png"), [1, 2, 3]);

        var (repaired, progress) = await Prepare(TinyMethods.Prior(count: 3), cache);
        Assert.False(repaired.FromCache);
        Assert.Equal(1, repaired.GeneratedCount);
        Assert.Equal([2, 3], progress.Select(p => p.Completed));
        for (int i = 0; i < 3; i++) Assert.Equal(first.Images[i].Pixels, repaired.Images[i].Pixels);
        Assert.True((await Prepare(TinyMethods.Prior(count: 3), cache)).Set.FromCache);
    }

    [Fact]
    public async Task A_cancelled_generation_keeps_whole_batches_and_continues_to_the_same_images()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string cache = dir.File("class-images");
        using var cts = new CancellationTokenSource();
        using (var pipeline = Build(TinyMethods.Prior(count: 3), cache))
        {
            var progress = new RecordingProgress<ClassImageProgress>(p => { if (p.Completed == 2) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.PrepareClassImagesAsync("dog", progress, cts.Token));
            Assert.Single(progress.Items);
        }
        string manifest = File.ReadAllText(Path.Combine(cache, "class_images.json"));
        Assert.Contains("\"complete\": false", manifest);
        Assert.False(File.Exists(Path.Combine(cache, "class_00002.png")));

        var (continued, continuedProgress) = await Prepare(TinyMethods.Prior(count: 3), cache);
        Assert.Equal(1, continued.GeneratedCount);
        Assert.Equal([2, 3], continuedProgress.Select(p => p.Completed));
        var (inMemory, _) = await Prepare(TinyMethods.Prior(count: 3), cache: null);
        Assert.Null(inMemory.Directory);
        Assert.Empty(inMemory.Files);
        for (int i = 0; i < 3; i++) Assert.Equal(inMemory.Images[i].Pixels, continued.Images[i].Pixels);
    }

    [Fact]
    public async Task Class_images_need_prior_settings_and_the_base_model()
    {
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options()))
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.PrepareClassImagesAsync("dog"));
            await pipeline.TrainAsync(TinyPipeline.Dog());
        }
        using var trained = Build(TinyMethods.Prior(), cache: null);
        await trained.TrainAsync(TinyPipeline.Dog());
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => trained.PrepareClassImagesAsync("dog"));
        Assert.Contains("base model", error.Message);
    }

    [Fact]
    public void The_total_loss_is_the_instance_loss_plus_weight_times_the_class_loss()
    {
        using var components = StableDiffusionComponents.Load(TestPaths.TinySd1);
        using var concept = ConceptEmbedding.Create(components.Tokenizer, components.TextEncoder, ConceptToken.New("new_concept_v0", "dog"));
        using var scheduler = DdpmScheduler.FromConfig(components.SchedulerConfig);
        Assert.Equal(PredictionType.Epsilon, scheduler.PredictionType);
        using var objective = new PersonalizationObjective(components, concept, scheduler);
        var generator = new Generator(23);
        var ids = components.Tokenizer.EncodeToTensor(["a photo of a new_concept_v0 dog", "a photo of a new_concept_v0 dog"]);
        var v = TokenPositions.FindFirst(ids, concept.TokenIds[0]);
        var c = TokenPositions.FindCategory(ids, v, components.Tokenizer.EncodeWithoutSpecialTokens("dog")[0]);
        var batch = new TrainingBatch(randn([2, 4, 32, 32], generator: generator), randn([2, 4, 32, 32], generator: generator), tensor(new long[] { 10, 900 }), ids, v, c);
        var classLatents = randn([2, 4, 32, 32], generator: generator);
        var classNoise = randn([2, 4, 32, 32], generator: generator);
        var classTimesteps = tensor(new long[] { 500, 30 });
        Tensor classHidden;
        using (no_grad()) classHidden = components.TextEncoder.Forward(components.Tokenizer.EncodeToTensor(["a photo of a dog", "a photo of a dog"])).LastHiddenState;
        var weights = AttentionRegularizationWeights.FineTuningStage;

        // The class loss, computed here from the U-Net directly.
        double classMse;
        using (no_grad())
        {
            var prediction = components.UNet.call(scheduler.AddNoise(classLatents, classNoise, classTimesteps), classTimesteps, classHidden);
            classMse = prediction.sub(classNoise).pow(Kept(2)).mean().item<float>();
        }
        Assert.True(classMse > 0);

        var without = objective.Compute(batch, weights);
        var zero = objective.Compute(batch, weights, prior: new PriorPreservationBatch(classLatents, classNoise, classTimesteps, classHidden, 0));
        Assert.Equal(without.Loss.item<float>(), zero.Loss.item<float>());
        Assert.Equal(0, zero.PriorMse);

        const double w = 0.7;
        var with = objective.Compute(batch, weights, prior: new PriorPreservationBatch(classLatents, classNoise, classTimesteps, classHidden, w));
        Assert.Equal(without.Mse, with.Mse);
        Assert.Equal(without.Attention, with.Attention);
        Assert.Equal(classMse, with.PriorMse, 1e-6);
        Assert.Equal(without.Mse + without.Attention + w * classMse, with.Loss.item<float>(), 1e-5);

        Assert.Throws<ArgumentOutOfRangeException>(() => objective.Compute(batch, weights, prior: new PriorPreservationBatch(classLatents, classNoise, classTimesteps, classHidden, -1)));
    }

    [Fact]
    public async Task Weight_zero_trains_as_without_prior_preservation_and_the_class_batches_leave_the_instance_batches_alone()
    {
        // A learning rate too small to move any weight: every step then sees the initial model, so equal instance losses
        // step after step mean equal instance batches.
        static StagePlan Frozen(StagePlan plan) => plan.With(TrainingStage.UNet, s => s with { LearningRate = 1e-30, MaxGradNorm = null });
        var noPrior = TinyMethods.Plan(PersonalizationMethod.DreamBooth, stepsPerStage: 3).With(TrainingStage.UNet, s => s with { PriorLossWeight = 0 }) with { PriorPreservation = null };
        var (noLosses, noProgress, noWeights) = await Train(noPrior);
        var (zeroLosses, zeroProgress, zeroWeights) = await Train(noPrior with { PriorPreservation = TinyMethods.Prior() });
        var (_, frozenNoProgress, _) = await Train(Frozen(noPrior));
        var (frozenOneLosses, frozenOneProgress, _) = await Train(Frozen(TinyMethods.Plan(PersonalizationMethod.DreamBooth, stepsPerStage: 3)));

        Assert.Equal(noLosses, zeroLosses);
        Assert.Equal(noWeights, zeroWeights);
        Assert.All(zeroProgress, p => Assert.Equal(0, p.PriorLoss));
        Assert.Equal(noProgress.Select(p => p.MseLoss), zeroProgress.Select(p => p.MseLoss));

        Assert.Equal(frozenNoProgress.Select(p => p.MseLoss), frozenOneProgress.Select(p => p.MseLoss));
        Assert.All(frozenOneProgress, p => Assert.True(p.PriorLoss > 0));
        Assert.Equal(frozenOneProgress.Select(p => p.MseLoss + p.PriorLoss), frozenOneLosses);
        // Different class images every step: the class batches have their own data order, noise and timesteps.
        Assert.Equal(3, frozenOneProgress.Select(p => p.PriorLoss).Distinct().Count());
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_prior_preserving_run()
    {
        var plan = TinyMethods.Plan(PersonalizationMethod.DreamBooth);
        var a = await Train(plan);
        var b = await Train(plan);
        var c = await Train(plan, seed: 8);
        Assert.Equal(a.Losses, b.Losses);
        Assert.Equal(a.Progress.Select(p => p.PriorLoss), b.Progress.Select(p => p.PriorLoss));
        Assert.Equal(a.Weights, b.Weights);
        Assert.NotEqual(a.Losses, c.Losses);
    }

    [Fact]
    public async Task A_prior_preserving_run_resumes_exactly()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var plan = TinyMethods.Plan(PersonalizationMethod.TextualInversionDreamBooth);
        var reference = await Train(plan);

        var options = TinyPipeline.Options(dir.File("ckpt")) with { ClassImageDirectory = dir.File("class") };
        using var cts = new CancellationTokenSource();
        using (var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(options).Build())
        {
            var progress = new RecordingProgress<TrainingProgress>(p => { if (p.GlobalStep == 3) cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), progress, cts.Token));
            Assert.Equal(TrainingStage.UNet, progress.Items[^1].Stage);
        }
        using (var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(options).ResumeFrom(dir.File("ckpt")).Build())
        {
            var classProgress = new RecordingProgress<ClassImageProgress>();
            var model = await pipeline.TrainAsync(TinyPipeline.Dog(), classImageProgress: classProgress);
            Assert.True(Assert.Single(classProgress.Items).FromCache);
            Assert.Equal(reference.Losses, model.LossHistory);
            Assert.Equal(reference.Weights, PersonalizationPipelineTests.Fingerprint(pipeline));
        }
    }

    private static async Task<(IReadOnlyList<double> Losses, IReadOnlyList<TrainingProgress> Progress, byte[] Weights)> Train(StagePlan plan, long seed = 7)
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(TinyPipeline.Options(seed: seed)).Build();
        var progress = new RecordingProgress<TrainingProgress>();
        var model = await pipeline.TrainAsync(TinyPipeline.Dog(), progress);
        return (model.LossHistory.ToArray(), progress.Items, PersonalizationPipelineTests.Fingerprint(pipeline));
    }
}
