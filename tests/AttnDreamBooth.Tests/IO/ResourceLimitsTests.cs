using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Tests.Cli;
using AttnDreamBooth.Text;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.IO;

/// <summary>The resource limits are one public record that the entry points take: each limit refuses by default what is
/// above it, accepts it once raised, and refuses a normal input once lowered; the record refuses non-positive limits and
/// its defaults are the ones docs/security.md lists.</summary>
public sealed partial class ResourceLimitsTests
{
    private static IEnumerable<PropertyInfo> Limits() =>
        typeof(ResourceLimits).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite);

    [Fact]
    public void EveryLimitBelowOneIsRefusedNamingTheProperty()
    {
        Assert.True(Limits().Count() >= 19);
        foreach (var property in Limits())
        {
            foreach (long bad in new long[] { 0, -1 })
            {
                var copy = ResourceLimits.Default with { };
                var error = Assert.Throws<TargetInvocationException>(() => property.SetValue(copy, property.PropertyType == typeof(int) ? (object)(int)bad : bad));
                var outOfRange = Assert.IsType<ArgumentOutOfRangeException>(error.InnerException);
                Assert.Equal(property.Name, outOfRange.ParamName);
            }
        }
        var direct = Assert.Throws<ArgumentOutOfRangeException>(() => ResourceLimits.Default with { MaxImagePixels = 0 });
        Assert.Equal(nameof(ResourceLimits.MaxImagePixels), direct.ParamName);
        // A raised copy leaves the defaults alone.
        var raised = ResourceLimits.Default with { MaxEmbeddingRows = 5000 };
        Assert.Equal(5000, raised.MaxEmbeddingRows);
        Assert.Equal(1024, ResourceLimits.Default.MaxEmbeddingRows);
        Assert.NotEqual(ResourceLimits.Default, raised);
    }

    [Fact]
    public void SecurityDocListsEveryLimitWithItsDefault()
    {
        var rows = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "docs", "security.md"))
            .Select(l => LimitRow().Match(l)).Where(m => m.Success)
            .ToDictionary(m => m.Groups[1].Value, m => long.Parse(m.Groups[2].Value.Replace(",", ""), CultureInfo.InvariantCulture));
        foreach (var property in Limits())
        {
            Assert.True(rows.ContainsKey(property.Name), $"docs/security.md has no row for {property.Name}");
            Assert.Equal(Convert.ToInt64(property.GetValue(ResourceLimits.Default), CultureInfo.InvariantCulture), rows[property.Name]);
        }
        Assert.Equal(Limits().Count(), rows.Count);
    }

    [GeneratedRegex(@"^\| `(Max\w+)` \| ([\d,]+)")]
    private static partial Regex LimitRow();

    [Fact]
    public void TrainTimestepsAboveTheDefaultAreReadOnceRaised()
    {
        const string huge = """{"_class_name": "DDPMScheduler", "num_train_timesteps": 150000, "beta_schedule": "squaredcos_cap_v2"}""";
        var refused = Assert.Throws<ModelConfigException>(() => SchedulerConfig.Parse(huge));
        Assert.Contains("ResourceLimits.MaxTrainTimesteps", refused.Message);
        Assert.Equal("num_train_timesteps", refused.Key);

        var raised = ResourceLimits.Default with { MaxTrainTimesteps = 200_000 };
        Assert.Equal(150_000, SchedulerConfig.Parse(huge, limits: raised).NumTrainTimesteps);

        const string normal = """{"_class_name": "DDPMScheduler", "num_train_timesteps": 1000}""";
        Assert.Equal(1000, SchedulerConfig.Parse(normal).NumTrainTimesteps);
        var lowered = ResourceLimits.Default with { MaxTrainTimesteps = 999 };
        Assert.Contains("MaxTrainTimesteps", Assert.Throws<ModelConfigException>(() => SchedulerConfig.Parse(normal, limits: lowered)).Message);
    }

    [Fact]
    public void AWideUNetConfigIsReadOnceChannelsAndParametersAreRaisedAndALoweredCeilingRefusesTheTinyModel()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("config.json");
        File.WriteAllText(path, """
            {"block_out_channels": [20480, 20480], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 8, "norm_num_groups": 32,
             "cross_attention_dim": 768, "layers_per_block": 1}
            """);
        Assert.Contains("ResourceLimits.MaxChannels", Assert.Throws<ModelConfigException>(() => UNetConfig.Load(path)).Message);
        var channels = ResourceLimits.Default with { MaxChannels = 32_768 };
        // Past the width check, its estimated size (tens of billions of parameters) is the next refusal.
        Assert.Contains("ResourceLimits.MaxParameters", Assert.Throws<ModelConfigException>(() => UNetConfig.Load(path, channels)).Message);
        var config = UNetConfig.Load(path, channels with { MaxParameters = 1_000_000_000_000 });
        Assert.Equal(new[] { 20480, 20480 }, config.BlockOutChannels);

        // Lowered through the pipeline builder: the tiny model's first network is refused before it is built.
        var lowered = ResourceLimits.Default with { MaxParameters = 1000 };
        var error = Assert.Throws<ModelConfigException>(() => PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithResourceLimits(lowered).Build());
        Assert.Contains("ResourceLimits.MaxParameters", error.Message);
        // The limits were the call's: the same folder loads with the defaults afterwards.
        using var components = StableDiffusionComponents.Load(TestPaths.TinySd1);
        Assert.Equal(ResourceLimits.Default, components.ResourceLimits);
    }

    [Fact]
    public async Task AnEmbeddingAboveTheRowLimitIsImportedOnlyByAPipelineWithARaisedLimit()
    {
        using var dir = TestPaths.CreateTempDirectory();
        int width;
        using (var probe = StableDiffusionComponents.Load(TestPaths.TinySd1)) width = (int)probe.TextEncoder.HiddenSize;
        string big = dir.File("big.safetensors"), normal = dir.File("normal.safetensors");
        SafetensorsWriter.Write(big, new Dictionary<string, torch.Tensor> { ["<big>"] = torch.full(1100, width, Kept(0.25f)) });
        SafetensorsWriter.Write(normal, new Dictionary<string, torch.Tensor> { ["<normal>"] = torch.full(3, width, Kept(0.25f)) });

        using (var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build())
        {
            var refused = await Assert.ThrowsAsync<InvalidWeightsException>(() => PersonalizedModel.ImportAsync(new ConceptImport(big), pipeline));
            Assert.Contains("ResourceLimits.MaxEmbeddingRows", refused.Message);
            Assert.Null(pipeline.Concept);
        }
        using (var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithResourceLimits(ResourceLimits.Default with { MaxEmbeddingRows = 2048 }).Build())
        {
            var imported = await PersonalizedModel.ImportAsync(new ConceptImport(big), pipeline);
            Assert.Equal("<big>", imported.Token);
            Assert.Equal(1100, pipeline.Components.Tokenizer.AddedTokens.Count);
        }
        using (var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithResourceLimits(ResourceLimits.Default with { MaxEmbeddingRows = 2 }).Build())
        {
            await Assert.ThrowsAsync<InvalidWeightsException>(() => PersonalizedModel.ImportAsync(new ConceptImport(normal), pipeline));
            Assert.Null(pipeline.Concept);
        }
    }

    [Fact]
    public async Task LoweredImageLimitsRefuseNormalPhotosOnTheTrainingAndEvaluationPathsAlike()
    {
        string photo = Directory.GetFiles(TinyPipeline.DogPhotos, "*.jpg").Order(StringComparer.Ordinal).First();
        var pixels = ResourceLimits.Default with { MaxImagePixels = 10_000 };
        var bytes = ResourceLimits.Default with { MaxImageFileBytes = 1000 };
        Assert.True(RgbImage.Load(photo).Width >= 600);

        var evaluation = Assert.Throws<InvalidImageException>(() => RgbImage.Load(photo, pixels));
        Assert.Equal(ImageProblemKind.TooLarge, evaluation.Kind);
        Assert.Contains("ResourceLimits.MaxImagePixels", evaluation.Message);
        Assert.Contains("ResourceLimits.MaxImageFileBytes", Assert.Throws<InvalidImageException>(() => RgbImage.Load(photo, bytes)).Message);

        var concept = Concept.FromFiles([photo], "dog");
        Assert.Empty(concept.FindProblems());
        Assert.Equal(ImageProblemKind.TooLarge, Assert.Single(concept.FindProblems(limits: pixels)).Kind);

        using var dir = TestPaths.CreateTempDirectory();
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(TinyPipeline.Plan(1, 1, 1))
            .WithTrainingOptions(TinyPipeline.Options(dir.File("ckpt"))).WithResourceLimits(pixels).Build();
        Assert.Equal(pixels, pipeline.ResourceLimits);
        var training = await Assert.ThrowsAsync<InvalidImageException>(() => pipeline.TrainAsync(concept));
        Assert.Equal(evaluation.Problems.Single().Detail, training.Problems.Single().Detail);
        Assert.False(Directory.Exists(dir.File("ckpt")));
    }

    [Fact]
    public void LoweredFileLimitsRefuseTheTinyModelsFiles()
    {
        var tensor = Assert.Throws<InvalidWeightsException>(() => StableDiffusionComponents.Load(TestPaths.TinySd1, limits: ResourceLimits.Default with { MaxTensorBytes = 64 }));
        Assert.Contains("ResourceLimits.MaxTensorBytes", tensor.Message);
        var header = Assert.Throws<InvalidWeightsException>(() => StableDiffusionComponents.Load(TestPaths.TinySd1, limits: ResourceLimits.Default with { MaxSafetensorsHeaderBytes = 64 }));
        Assert.Contains("ResourceLimits.MaxSafetensorsHeaderBytes", header.Message);
        var config = Assert.Throws<ModelConfigException>(() => StableDiffusionComponents.Load(TestPaths.TinySd1, limits: ResourceLimits.Default with { MaxConfigFileBytes = 16 }));
        Assert.Contains("ResourceLimits.MaxConfigFileBytes", config.Message);
        var vocabulary = Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"), ResourceLimits.Default with { MaxTokenizerFileBytes = 1000 }));
        Assert.Contains("ResourceLimits.MaxTokenizerFileBytes", vocabulary.Message);
        var evaluator = Assert.Throws<ModelConfigException>(() => ConceptEvaluator.FromFolder(TinyConcept.ClipFolder, limits: ResourceLimits.Default with { MaxParameters = 1000 }));
        Assert.Contains("ResourceLimits.MaxParameters", evaluator.Message);
    }

    [Fact]
    public async Task TheCliTakesLimitsAsNameValuePairs()
    {
        var limits = CliLimits.Parse(["MaxImagePixels=200_000_000", "maxparameters = 20000000000"]);
        Assert.Equal(ResourceLimits.Default with { MaxImagePixels = 200_000_000, MaxParameters = 20_000_000_000 }, limits);
        Assert.Contains("MaxChannels", Assert.Throws<ArgumentException>(() => CliLimits.Parse(["MaxPixels=5"])).Message);
        Assert.Contains("at least 1", Assert.Throws<ArgumentException>(() => CliLimits.Parse(["MaxBlocks=0"])).Message);
        Assert.Throws<ArgumentException>(() => CliLimits.Parse(["MaxBlocks=9999999999"]));

        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["generate", "--model", TestPaths.TinySd1, "--prompt", "a dog", "--out", temp.File("out"), "--steps", "1", "--limit", "MaxParameters=1000"], console);
        Assert.Equal(2, exit);
        Assert.Contains("ResourceLimits.MaxParameters", text.ToString());
        Assert.False(Directory.Exists(temp.File("out")));
    }
}
