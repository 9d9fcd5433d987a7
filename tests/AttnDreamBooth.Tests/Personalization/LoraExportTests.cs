using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Models.UNet;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The LoRA export: a kohya file the library's reader loads, which on the base model reproduces the fine-tuning of
/// every wrapped layer, and whose remaining error is the changes a LoRA cannot hold (reported).</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class LoraExportTests(TrainedConcepts concepts)
{
    private static UNet2DConditionModel BaseUNet(string baseModel)
    {
        var unet = UNet2DConditionModel.FromFolder(Path.Combine(baseModel, "unet"));
        unet.eval();
        return unet;
    }

    [Theory]
    [InlineData("sd1")]
    [InlineData("sd2")]
    public async Task AtFullRankTheLoraReproducesTheFineTunedLayersAndReportsWhatItCannotHold(string family)
    {
        string baseModel = family == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2;
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(baseModel, family == "sd1" ? concepts.Sd1 : concepts.Sd2);
        using var _ = pipeline;
        var result = await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.Lora, LoraRank = null });
        var report = result.Lora!;
        string loraPath = Path.Combine(export, $"{model.Token}-lora.safetensors");
        Assert.Equal(new[] { $"{model.Token}-lora.safetensors", $"{model.Token}.safetensors", "README.txt", "attndreambooth_export.json" }.Order(StringComparer.Ordinal),
            result.Files.Keys.Order(StringComparer.Ordinal));

        // Stage 3 changed every layer: all of them are in the file, at their full rank, exactly up to float32.
        using var baseUNet = BaseUNet(baseModel);
        var targets = LoraTargets.Select(baseUNet, LoraUNetModules.All);
        Assert.Equal(targets.Order(StringComparer.Ordinal), report.Layers.Select(l => l.ModulePath).Order(StringComparer.Ordinal));
        Assert.True(report.MaxRelativeError < 1e-5, $"largest relative weight error {report.MaxRelativeError:g3}");
        // Biases and norms changed too and cannot be in a LoRA: they are reported, not dropped silently.
        Assert.Contains(report.NotCarried.Keys, name => name.EndsWith(".bias", StringComparison.Ordinal));
        Assert.DoesNotContain(report.NotCarried.Keys, name => targets.Contains(name[..name.LastIndexOf('.')]) && name.EndsWith(".weight", StringComparison.Ordinal));

        // The library's reader takes the file back (kohya layout, no unknown key).
        using var network = LoraFile.Load(loraPath, baseUNet, null);
        Assert.Equal([LoraFileFormat.Kohya], network.LoadReport!.Formats);
        Assert.Equal(report.Layers.Count, network.Adapters.Count);
        foreach (var adapter in network.Adapters)
        {
            var shape = adapter.Shape;
            Assert.Equal(Math.Min(shape.Out, shape.In * shape.KernelH * shape.KernelW), adapter.Rank);
        }

        // On the base U-Net it gives the fine-tuned U-Net with the uncarried tensors at their base values (float32
        // rounding), and the fine-tuned U-Net itself within the error those tensors make.
        var (sample, t, text) = TinyUNet.Inputs(baseUNet, batch: 2, height: 8, width: 8);
        using var noGrad = torch.no_grad();
        var before = baseUNet.call(sample, t, text);
        var tuned = pipeline.Components.UNet.call(sample, t, text);
        using var carriedOnly = BaseUNet(baseModel);
        var baseState = baseUNet.state_dict();
        var tunedState = pipeline.Components.UNet.state_dict();
        var notCarried = report.NotCarried.Keys.ToHashSet();
        foreach (var (name, value) in carriedOnly.state_dict()) value.copy_(notCarried.Contains(name) ? baseState[name] : tunedState[name]);
        var wantCarried = carriedOnly.call(sample, t, text);
        network.Install();
        var got = baseUNet.call(sample, t, text);
        network.Remove();

        double change = tuned.sub(before).norm().item<float>();
        double carriedError = got.sub(wantCarried).norm().item<float>() / change;
        double totalError = got.sub(tuned).norm().item<float>() / change;
        Console.WriteLine($"{family}: fine-tune changes the output by {change:g3}; LoRA vs carried-only {carriedError:g3}, vs fine-tuned {totalError:g3}; " +
            $"{report.NotCarried.Count} uncarried tensors, largest relative change {report.MaxNotCarriedRelativeChange:g3}");
        Assert.True(carriedError < 5e-3, $"LoRA vs the carried changes: {carriedError:g3} of the fine-tune's change");
        Assert.True(totalError < 0.5, $"LoRA vs the fine-tuned U-Net: {totalError:g3} of the fine-tune's change");
    }

    [Fact]
    public async Task ImportingTheEmbeddingWithTheLoraGivesNearlyTheConceptsImages()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        byte[] expected, baseline;
        using (pipeline)
        {
            await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.Lora, LoraRank = null });
            expected = await TrainedConcepts.RenderAsync(pipeline, "a photo of a {}");
        }
        using var other = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var imported = await PersonalizedModel.ImportAsync(ConceptImport.FromFolder(export) with { Category = "dog" }, other);
        Assert.Equal(model.Token, imported.Token);
        var actual = await TrainedConcepts.RenderAsync(other, "a photo of a {}");

        // The same embedding on the untouched base model, to see what the U-Net's fine-tuning does to the image.
        using (var plain = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build())
        {
            await PersonalizedModel.ImportAsync(new ConceptImport(Path.Combine(export, $"{model.Token}.safetensors")) { Category = "dog" }, plain);
            baseline = await TrainedConcepts.RenderAsync(plain, "a photo of a {}");
        }
        double withLora = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Average();
        double without = expected.Zip(baseline, (a, b) => Math.Abs(a - b)).Average();
        Console.WriteLine($"mean |difference| to the concept's image: with the LoRA {withLora:F3}, base U-Net {without:F3} levels; max with LoRA {expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max()}");
        Assert.True(withLora < without, $"the LoRA must bring the image closer to the concept's ({withLora:F3} vs {without:F3})");
        Assert.True(withLora <= 1.0, $"mean difference {withLora:F3} levels");
    }

    [Fact]
    public async Task ALowerRankGivesSmallerAdaptersAndTheFileStillLoads()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd2, concepts.Sd2);
        using var _ = pipeline;
        var low = await model.ExportAsync(temp.File("low"), new ConceptExportOptions { Format = ConceptExportFormat.Lora, LoraRank = 2 });
        var full = await model.ExportAsync(temp.File("full"), new ConceptExportOptions { Format = ConceptExportFormat.Lora, LoraRank = null });
        Assert.All(low.Lora!.Layers, l => Assert.True(l.Rank <= 2, l.ModulePath));
        Assert.True(low.Lora.MaxRelativeError > full.Lora!.MaxRelativeError);
        long Size(ConceptExportResult r) => r.Files.Single(f => f.Key.EndsWith("-lora.safetensors", StringComparison.Ordinal)).Value;
        Assert.True(Size(low) < Size(full), $"{Size(low)} vs {Size(full)} bytes");
        using var baseUNet = BaseUNet(TestPaths.TinySd2);
        using var network = LoraFile.Load(Path.Combine(temp.File("low"), $"{model.Token}-lora.safetensors"), baseUNet, null);
        Assert.All(network.Adapters, a => Assert.True(a.Rank <= 2));
        using var file = SafetensorsFile.Open(Path.Combine(temp.File("low"), $"{model.Token}-lora.safetensors"));
        Assert.Equal("True", file.Metadata["ss_v2"]);
        Assert.Equal("2", file.Metadata["ss_network_dim"]);
    }

    [Fact]
    public async Task AConceptWhoseUNetDidNotChangeHasNoLoraToExport()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1Existing);
        using var _ = pipeline;
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            model.ExportAsync(temp.File("export"), new ConceptExportOptions { Format = ConceptExportFormat.Lora }));
        Assert.Contains("does not differ from the base model", error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.Path));
    }
}
