using System.Runtime.InteropServices;
using System.Text.Json;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Evaluation;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.IO;

/// <summary>
/// Native allocation failures surface as <see cref="TensorAllocationException"/> instead of a bare ExternalException or a
/// process abort; configs that would allocate without bound are refused first, by parameter estimates that are checked
/// here against real models.
/// </summary>
public sealed class TensorAllocationTests
{
    // 2^46 floats (256 TiB): more than any x86-64 or arm64 process can address, so the allocation fails on every machine.
    private const long Impossible = 1L << 46;

    [Fact]
    public void ANativeAllocationFailureBecomesATypedLibraryException()
    {
        var error = Assert.Throws<TensorAllocationException>(() =>
            TensorAllocation.Guard("testing the seam", "Do less.", () => empty([Impossible])));
        Assert.IsAssignableFrom<AttnDreamBoothException>(error);
        Assert.IsType<ExternalException>(error.InnerException);
        Assert.Equal(Impossible * 4, error.RequestedBytes);
        Assert.Equal("testing the seam", error.Operation);
        Assert.StartsWith("Out of memory while testing the seam: libtorch could not allocate 281,474,976,710,656 bytes (262,144.0 GiB). Do less.", error.Message);
        // The native stack trace stays on the inner exception, out of the one-line message.
        Assert.DoesNotContain("frame #", error.Message);
    }

    [Fact]
    public void OtherNativeErrorsAreNotMistakenForOutOfMemory()
    {
        using var a = ones(2, 3);
        var error = Assert.Throws<ExternalException>(() => TensorAllocation.Guard("multiplying", "n/a", () => a.mm(a)));
        Assert.IsNotType<TensorAllocationException>(error);
        Assert.False(TensorAllocation.IsFailure(error));
    }

    [Fact]
    public void RecordedAttentionThatCannotAllocateRaisesInsteadOfEndingTheProcess()
    {
        // Scores of [1, 1, 2^24, 2^24] floats (1 PiB). Through TorchSharp's matmul this aborted the test host.
        long tokens = 1L << 24;
        using var q = ones(1, 1, tokens, 1);
        var error = Assert.ThrowsAny<ExternalException>(() => AttentionMath.Explicit(q, q, q, 1.0));
        Assert.True(TensorAllocation.IsFailure(error), error.Message);
    }

    [Fact]
    public void TheBatchedProductIsBitIdenticalToMatmul()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        var q = randn([2, 3, 5, 8], generator: generator);
        var k = randn([2, 3, 6, 8], generator: generator);
        var v = randn([2, 3, 6, 4], generator: generator);
        var scores = AttentionMath.BatchedMatrixProduct(q, k.transpose(-1, -2));
        Assert.True(TinyPipeline.BitEqual(scores, matmul(q, k.transpose(-1, -2))));
        Assert.True(TinyPipeline.BitEqual(AttentionMath.BatchedMatrixProduct(scores, v), matmul(scores, v)));
        Assert.Equal([2L, 3, 5, 4], AttentionMath.BatchedMatrixProduct(scores, v).shape);
    }

    private static long ExactParameters(string model, string component)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureRoots.RealSize, model, component, "state_dict_shapes.json")));
        return doc.RootElement.EnumerateObject().Sum(p => p.Value.EnumerateArray().Aggregate(1L, (n, d) => n * d.GetInt64()));
    }

    public static TheoryData<string> RealModels() => ["stable-diffusion-v1-5", "stable-diffusion-2-1", "stable-diffusion-2-1-base"];

    [Theory]
    [MemberData(nameof(RealModels))]
    public void ParameterEstimatesAreWithinTenPercentOfRealModels(string model)
    {
        string folder = Path.Combine(FixtureRoots.RealSize, model);
        double unet = UNetConfigLimits.Estimate(UNetConfig.Load(Path.Combine(folder, "unet", "config.json")));
        double text = ClipTextConfigLimits.Estimate(ClipTextConfig.Load(Path.Combine(folder, "text_encoder", "config.json")));
        Assert.InRange(unet / ExactParameters(model, "unet"), 0.9, 1.1);
        Assert.InRange(text / ExactParameters(model, "text_encoder"), 0.9, 1.1);
        if (File.Exists(Path.Combine(folder, "vae", "state_dict_shapes.json")))
        {
            double vae = AutoencoderKLConfigLimits.Estimate(AutoencoderKLConfig.Load(Path.Combine(folder, "vae", "config.json")));
            Assert.InRange(vae / ExactParameters(model, "vae"), 0.9, 1.1);
        }
    }

    [Fact]
    public void TheClipVisionEstimateIsWithinTenPercentOfTheBuiltTower()
    {
        // transformers' CLIPVisionConfig defaults (ViT-B/32) and OpenAI's ViT-L/14, built on the meta device.
        foreach (var config in new[] { new ClipVisionConfig(), new ClipVisionConfig { HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16, PatchSize = 14 } })
        {
            using var model = new ClipVisionModel(config, new Device(DeviceType.META));
            long exact = model.parameters().Sum(p => p.numel());
            Assert.InRange(ClipVisionLimits.Estimate(config) / exact, 0.9, 1.1);
        }
    }

    [Fact]
    public void TheUNetEstimateCountsAWideInputConvolution()
    {
        // conv_in alone: 16,384 input channels × 512 × 15 × 15 ≈ 1.9e9 parameters, which the block-based estimate missed.
        var config = UNetConfig.FromReader(ConfigReader.Parse("""
            {"in_channels": 16384, "conv_in_kernel": 15, "block_out_channels": [512, 512], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32, "attention_head_dim": 8, "layers_per_block": 1}
            """, "unet/config.json"));
        Assert.True(UNetConfigLimits.Estimate(config) > 16384.0 * 512 * 225);
    }

    public static TheoryData<string, string, string> HugeVisionConfigs() => new()
    {
        { """{"hidden_size": 100000000, "num_attention_heads": 1}""", "hidden_size", "MaxChannels" },
        { """{"num_hidden_layers": 1000000}""", "num_hidden_layers", "MaxTextLayers" },
        { """{"image_size": 1000000, "patch_size": 1000}""", "image_size", "MaxSampleSize" },
        { """{"image_size": 16384, "patch_size": 16}""", "image_size", "MaxPositionEmbeddings" },
        { """{"hidden_size": 16384, "num_attention_heads": 16, "intermediate_size": 65536, "num_hidden_layers": 64}""", null!, "MaxParameters" },
    };

    [Theory]
    [MemberData(nameof(HugeVisionConfigs))]
    public void ClipVisionConfigsAreRefusedBeforeAllocation(string json, string? key, string limit)
    {
        var error = Assert.Throws<ModelConfigException>(() => ClipVisionConfig.FromReader(ConfigReader.Parse(json, "clip/config.json")));
        Assert.Equal(key, error.Key);
        Assert.Contains(limit, error.Message);
    }

    [Fact]
    public void ClipProjectionAndPreprocessingSizesAreBounded()
    {
        var projection = Assert.Throws<ModelConfigException>(() => ClipModelConfig.FromReader(ConfigReader.Parse("""{"projection_dim": 100000000}""", "clip/config.json")));
        Assert.Equal("projection_dim", projection.Key);
        var crop = Assert.Throws<ModelConfigException>(() => ClipImageProcessorConfig.FromReader(ConfigReader.Parse("""{"crop_size": 1000000}""", "clip/preprocessor_config.json")));
        Assert.Equal("crop_size", crop.Key);
        var size = Assert.Throws<ModelConfigException>(() => ClipImageProcessorConfig.FromReader(ConfigReader.Parse("""{"size": {"shortest_edge": 1000000}}""", "clip/preprocessor_config.json")));
        Assert.Equal("size", size.Key);
    }

    [Fact]
    public void TrainingResolutionsAboveGenerationsLimitAreRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => new ConceptImageOptions { Resolution = 8192 }.Validate());
        Assert.Contains("up to 4096", error.Message);
        new ConceptImageOptions { Resolution = 4096 }.Validate();
    }

    [Fact]
    public async Task AModelsOwnResolutionAboveTheGenerationLimitIsRefusedBeforeAllocating()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string model = dir.File("model");
        foreach (string file in Directory.EnumerateFiles(TestPaths.TinySd1, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(model, Path.GetRelativePath(TestPaths.TinySd1, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        string config = Path.Combine(model, "unet", "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["sample_size"] = 8192;
        File.WriteAllText(config, json.ToJsonString());

        using var pipeline = PersonalizationPipeline.FromPretrained(model).Build();
        int resolution = pipeline.Components.DefaultResolution;
        Assert.True(resolution > 4096, $"default resolution {resolution}");
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipeline.GenerateAsync("a dog", new GenerationOptions { Steps = 1 }));
        Assert.Contains($"{resolution}×{resolution}", error.Message);
        // Explicit sizes within the limit still work with this model.
        var images = await pipeline.GenerateAsync("a dog", new GenerationOptions { Steps = 1, Width = 64, Height = 64 });
        Assert.Equal(64, images[0].Image.Width);
    }
}
