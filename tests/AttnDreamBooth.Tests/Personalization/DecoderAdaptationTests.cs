using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary><see cref="PersonalizedModel.AdaptDecoderAsync"/> on the tiny SD 1.x pipeline: the decoder learns the photos,
/// nothing before the latent moves, the adapted VAE saves and loads with the concept, and a cancelled, refused or
/// damaged adaptation leaves everything as it was.</summary>
public sealed class DecoderAdaptationTests
{
    private static readonly DecoderAdaptationOptions Options = new() { Steps = 12, LearningRate = 1e-3, BatchSize = 2, Seed = 5 };

    private static async Task<(PersonalizationPipeline Pipeline, PersonalizedModel Model)> TrainAsync()
    {
        var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options());
        var model = await pipeline.TrainAsync(TinyPipeline.Dog());
        return (pipeline, model);
    }

    // Mean squared error of the photos decoded from their posterior means.
    private static double ReconstructionError(PersonalizationPipeline pipeline)
    {
        var images = ConceptImageSet.Load(TinyPipeline.Dog(), new ConceptImageOptions { Resolution = pipeline.Components.DefaultResolution, Augmentation = ImageAugmentationOptions.None });
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = images.GetBatch([0, 1], random: null);
        var vae = pipeline.Components.Vae;
        return vae.Decode(vae.EncodeLatents(x)).sub(x).pow(Kept(2)).mean().item<float>();
    }

    private static bool IsDecoder(string name) => name.StartsWith("decoder.", StringComparison.Ordinal) || name.StartsWith("post_quant_conv.", StringComparison.Ordinal);

    private sealed class Reports<T>(Action<T>? onReport = null) : IProgress<T>
    {
        public List<T> Items { get; } = [];

        public void Report(T value)
        {
            Items.Add(value);
            onReport?.Invoke(value);
        }
    }

    [Fact]
    public async Task TheDecoderLearnsThePhotosAndNothingBeforeTheLatentMoves()
    {
        var (pipeline, model) = await TrainAsync();
        using var __ = pipeline;
        double before = ReconstructionError(pipeline);
        var vaeBefore = TinyPipeline.Snapshot(pipeline.Components.Vae);
        var unetBefore = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var reports = new Reports<DecoderAdaptationProgress>();

        await model.AdaptDecoderAsync(TinyPipeline.Dog(), Options, reports);

        Assert.Equal(Enumerable.Range(1, Options.Steps), reports.Items.Select(r => r.Step));
        Assert.All(reports.Items, r => Assert.True(double.IsFinite(r.Loss) && r.TotalSteps == Options.Steps));
        double after = ReconstructionError(pipeline);
        Assert.True(after < 0.9 * before, $"reconstruction error {before:G4} → {after:G4}: the decoder did not learn the photos");
        int moved = 0;
        foreach (var (name, tensor) in pipeline.Components.Vae.state_dict())
        {
            bool same = TinyPipeline.BitEqual(vaeBefore[name], tensor);
            if (!IsDecoder(name)) Assert.True(same, $"{name} changed, but only the decoder adapts");
            else if (!same) moved++;
        }
        Assert.True(moved > 10, $"only {moved} decoder tensors moved");
        Assert.All(pipeline.Components.UNet.state_dict(), p => Assert.True(TinyPipeline.BitEqual(unetBefore[p.Key], p.Value), $"U-Net {p.Key} changed"));
        Assert.All(pipeline.Components.Vae.parameters(), p => Assert.False(p.requires_grad || p.grad is not null, "the VAE is left trainable or with gradients"));
        Assert.Same(Options, model.DecoderAdaptation);

        // The same seed and photos give the same decoder, bit for bit.
        var (again, againModel) = await TrainAsync();
        using var ___ = again;
        await againModel.AdaptDecoderAsync(TinyPipeline.Dog(), Options);
        Assert.All(again.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(pipeline.Components.Vae.state_dict()[p.Key], p.Value), $"{p.Key} differs between two identical runs"));
    }

    [Fact]
    public async Task AnAdaptedConceptSavesItsVaeAndLoadsAndExportsItBitIdentically()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var generation = new GenerationOptions { Steps = 3, Seed = 3 };
        var (pipeline, model) = await TrainAsync();
        using var __ = pipeline;
        await model.SaveAsync(dir.File("plain"));
        Assert.False(Directory.Exists(Path.Combine(dir.File("plain"), PersonalizedModel.VaeFolder)), "a concept without an adapted decoder writes no VAE");
        Assert.Equal(1, Metadata(dir.File("plain"))["format_version"]!.GetValue<int>());

        await model.AdaptDecoderAsync(TinyPipeline.Dog(), Options);
        var adapted = TinyPipeline.Snapshot(pipeline.Components.Vae);
        var image = (await pipeline.GenerateAsync("a {} on the beach", generation))[0].Image.Pixels;
        string concept = dir.File("concept");
        await model.SaveAsync(concept);

        var metadata = Metadata(concept);
        Assert.Equal(2, metadata["format_version"]!.GetValue<int>());
        Assert.Equal(PersonalizedModel.VaeFolder, metadata["vae"]!.GetValue<string>());
        Assert.Equal(Options.Steps, metadata["decoder_adaptation"]!["steps"]!.GetValue<int>());
        Assert.True(File.Exists(Path.Combine(concept, "vae", "config.json")));

        using (var fresh = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build())
        {
            var loaded = await PersonalizedModel.LoadAsync(concept, fresh);
            Assert.All(fresh.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(adapted[p.Key], p.Value), $"{p.Key} differs after loading"));
            Assert.Equal(image, (await fresh.GenerateAsync("a {} on the beach", generation))[0].Image.Pixels);
            Assert.Equal((Options.Steps, Options.LearningRate, Options.BatchSize, Options.Seed),
                (loaded.DecoderAdaptation!.Steps, loaded.DecoderAdaptation.LearningRate, loaded.DecoderAdaptation.BatchSize, loaded.DecoderAdaptation.Seed));
            Assert.Equal(fresh.Components.DefaultResolution, loaded.DecoderAdaptation.Images.Resolution);
        }

        // A diffusers export carries the adapted VAE, not the base model's.
        var export = await model.ExportAsync(dir.File("export"), new ConceptExportOptions { Format = ConceptExportFormat.Diffusers });
        using var exported = StateDictSource.OpenComponent(Path.Combine(export.Folder, "vae"));
        foreach (var (name, tensor) in adapted)
        {
            using var saved = exported.Read(name);
            Assert.True(TinyPipeline.BitEqual(tensor, saved), $"exported {name} is not the adapted weight");
        }
    }

    [Fact]
    public async Task ACancelledRefusedOrInvalidAdaptationLeavesTheDecoderAsItWas()
    {
        var (pipeline, model) = await TrainAsync();
        using var __ = pipeline;
        var before = TinyPipeline.Snapshot(pipeline.Components.Vae);
        void AssertUnchanged() => Assert.All(pipeline.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(before[p.Key], p.Value), $"{p.Key} changed"));

        using var cts = new CancellationTokenSource();
        var cancelAtThree = new Reports<DecoderAdaptationProgress>(r => { if (r.Step == 3) cts.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.AdaptDecoderAsync(TinyPipeline.Dog(), Options, cancelAtThree, cts.Token));
        Assert.Equal(3, cancelAtThree.Items.Count);
        AssertUnchanged();
        Assert.Null(model.DecoderAdaptation);
        Assert.All(pipeline.Components.Vae.parameters(), p => Assert.False(p.requires_grad || p.grad is not null));

        foreach (var (bad, name) in new[]
        {
            (Options with { Steps = 0 }, "Steps"),
            (Options with { LearningRate = double.NaN }, "LearningRate"),
            (Options with { BatchSize = 65 }, "BatchSize"),
            (Options with { Images = new ConceptImageOptions { Resolution = 12 } }, "Resolution"),
        })
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => model.AdaptDecoderAsync(TinyPipeline.Dog(), bad));
            Assert.Equal(name, ex.ParamName);
        }
        AssertUnchanged();

        await model.AdaptDecoderAsync(TinyPipeline.Dog(), Options);
        var twice = await Assert.ThrowsAsync<InvalidOperationException>(() => model.AdaptDecoderAsync(TinyPipeline.Dog(), Options));
        Assert.Contains("already adapted", twice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALoadRefusesAMissingOrForeignVaeAndLeavesThePipelineUnchanged()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string concept = dir.File("concept");
        var (pipeline, model) = await TrainAsync();
        using (pipeline)
        {
            await model.AdaptDecoderAsync(TinyPipeline.Dog(), Options with { Steps = 2 });
            await model.SaveAsync(concept);
        }

        async Task AssertRefused<TException>(string folder, string expected) where TException : Exception
        {
            using var fresh = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
            var vae = TinyPipeline.Snapshot(fresh.Components.Vae);
            var unet = TinyPipeline.Snapshot(fresh.Components.UNet);
            var ex = await Assert.ThrowsAsync<TException>(() => PersonalizedModel.LoadAsync(folder, fresh));
            Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
            Assert.Null(fresh.Concept);
            Assert.All(fresh.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(vae[p.Key], p.Value), $"VAE {p.Key} changed by a refused load"));
            Assert.All(fresh.Components.UNet.state_dict(), p => Assert.True(TinyPipeline.BitEqual(unet[p.Key], p.Value), $"U-Net {p.Key} changed by a refused load"));
        }

        string foreign = dir.File("foreign");
        CopyFolder(concept, foreign);
        string config = Path.Combine(foreign, "vae", "config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["norm_num_groups"] = 1;
        File.WriteAllText(config, json.ToJsonString());
        await AssertRefused<ModelConfigException>(foreign, "norm_num_groups");

        string noWeights = dir.File("no-weights");
        CopyFolder(concept, noWeights);
        foreach (string f in Directory.GetFiles(Path.Combine(noWeights, "vae"), "*.safetensors")) File.Delete(f);
        await AssertRefused<ModelConfigException>(noWeights, "vae");

        string noVae = dir.File("no-vae");
        CopyFolder(concept, noVae);
        Directory.Delete(Path.Combine(noVae, "vae"), recursive: true);
        await AssertRefused<ModelConfigException>(noVae, "adapted VAE is required");

        string inconsistent = dir.File("inconsistent");
        CopyFolder(concept, inconsistent);
        var metadata = Metadata(inconsistent);
        metadata.Remove("decoder_adaptation");
        File.WriteAllText(Path.Combine(inconsistent, PersonalizedModel.MetadataFile), metadata.ToJsonString());
        await AssertRefused<ModelConfigException>(inconsistent, "decoder_adaptation");
    }

    private static JsonObject Metadata(string concept) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(concept, PersonalizedModel.MetadataFile)))!.AsObject();

    private static void CopyFolder(string from, string to)
    {
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
