using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Vae;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Vae;

public sealed class AutoencoderKLTests
{
    [Fact]
    public void ParameterNamesFollowDiffusers()
    {
        var config = AutoencoderKLConfig.Load(Path.Combine(VaeTestModels.Sd1Folder, "config.json"));
        using var vae = new AutoencoderKL(config, ComponentFactories.Meta);
        var names = vae.state_dict().Keys.ToHashSet();

        Assert.Contains("encoder.mid_block.attentions.0.to_out.0.weight", names);
        Assert.Contains("decoder.mid_block.attentions.0.group_norm.bias", names);
        Assert.Contains("encoder.down_blocks.0.downsamplers.0.conv.weight", names);
        Assert.DoesNotContain("encoder.down_blocks.1.downsamplers.0.conv.weight", names);
        Assert.Contains("decoder.up_blocks.0.upsamplers.0.conv.weight", names);
        Assert.Contains("decoder.up_blocks.1.resnets.2.conv2.weight", names);
        Assert.Contains("decoder.up_blocks.1.resnets.0.conv_shortcut.weight", names);
        Assert.Contains("quant_conv.weight", names);
        Assert.Contains("post_quant_conv.bias", names);
        Assert.All(vae.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
    }

    [Fact]
    public void MidBlockWithoutAttentionHasNoAttentionWeights()
    {
        var config = new AutoencoderKLConfig { BlockOutChannels = [32], NormNumGroups = 8, MidBlockAddAttention = false };
        using var vae = new AutoencoderKL(config, ComponentFactories.Meta);
        Assert.DoesNotContain(vae.state_dict().Keys, k => k.Contains("attentions"));
    }

    [Fact]
    public void EncodeAndDecodeKeepNonSquareShapes()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = VaeTestModels.LoadSd2();
        var images = torch.rand([2, 3, 20, 36], generator: new torch.Generator(11)).mul(Kept(2)).sub(Kept(1));

        using var posterior = vae.Encode(images);
        int f = vae.DownsampleFactor;
        Assert.Equal([2L, 4, 20 / f, 36 / f], posterior.Mean.shape);
        Assert.Equal([2L, 8, 20 / f, 36 / f], posterior.Parameters.shape);
        var decoded = vae.Decode(posterior.Mode());
        Assert.Equal([2L, 3, 20, 36], decoded.shape);
        Assert.Equal(Bytes(decoded), Bytes(vae.call(images)));
    }

    [Fact]
    public void EncodeLatentsIsThePosteriorsModeOrASeededDrawFromIt()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = VaeTestModels.LoadSd1();
        var images = torch.rand([2, 3, 16, 24], generator: new torch.Generator(3)).mul(Kept(2)).sub(Kept(1));
        using var posterior = vae.Encode(images);

        Assert.Equal(Bytes(posterior.Mean), Bytes(vae.EncodeLatents(images)));
        var drawn = vae.EncodeLatents(images, new torch.Generator(42));
        Assert.Equal(Bytes(posterior.Sample(new torch.Generator(42))), Bytes(drawn));
        Assert.NotEqual(Bytes(posterior.Mean), Bytes(drawn));
    }

    [Fact]
    public void BadInputsAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var vae = VaeTestModels.LoadSd2();
        Assert.Throws<ArgumentException>(() => vae.Encode(torch.zeros(1, 4, 16, 16)));
        Assert.Throws<ArgumentException>(() => vae.Encode(torch.zeros(3, 16, 16)));
        Assert.Throws<ArgumentException>(() => vae.Decode(torch.zeros(1, 3, 8, 8)));
        Assert.Throws<ArgumentException>(() => vae.Decode(torch.zeros(4, 8, 8)));
    }

    [Fact]
    public void FromFolderReportsMissingFolderAndConfig()
    {
        using var dir = TestPaths.CreateTempDirectory();
        Assert.Throws<DirectoryNotFoundException>(() => AutoencoderKL.FromFolder(Path.Combine(dir.Path, "nope")));
        var ex = Assert.Throws<ModelConfigException>(() => AutoencoderKL.FromFolder(dir.Path));
        Assert.Contains("config.json", ex.FilePath);
    }

    [Fact]
    public void FromFolderIsStrict()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = TestPaths.CreateTempDirectory();
        File.Copy(Path.Combine(VaeTestModels.Sd2Folder, "config.json"), dir.File("config.json"));
        var weights = ReadWeights(VaeTestModels.Sd2Folder);
        weights.Remove("decoder.conv_out.bias");
        SafetensorsWriter.Write(dir.File("diffusion_pytorch_model.safetensors"), weights);

        var ex = Assert.Throws<InvalidWeightsException>(() => AutoencoderKL.FromFolder(dir.Path));
        Assert.Contains("decoder.conv_out.bias", ex.Report!.Missing);
    }

    [Fact]
    public void LegacyAttentionNamesLoadAndGiveIdenticalOutputs()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var dir = TestPaths.CreateTempDirectory();
        File.Copy(Path.Combine(VaeTestModels.Sd1Folder, "config.json"), dir.File("config.json"));
        var legacy = ReadWeights(VaeTestModels.Sd1Folder).ToDictionary(p => ToLegacyName(p.Key), p => p.Value);
        Assert.Equal(16, legacy.Keys.Count(k => k.Contains(".query.") || k.Contains(".key.") || k.Contains(".value.") || k.Contains(".proj_attn.")));
        Assert.DoesNotContain(legacy.Keys, k => k.Contains(".to_q.") || k.Contains(".to_out."));
        SafetensorsWriter.Write(dir.File("diffusion_pytorch_model.safetensors"), legacy);

        using var current = VaeTestModels.LoadSd1();
        using var old = AutoencoderKL.FromFolder(dir.Path);
        var images = torch.rand([2, 3, 16, 24], generator: new torch.Generator(5)).mul(Kept(2)).sub(Kept(1));
        var latents = torch.randn([2, 4, 8, 12], generator: new torch.Generator(6));

        using var a = current.Encode(images);
        using var b = old.Encode(images);
        Assert.Equal(Bytes(a.Parameters), Bytes(b.Parameters));
        Assert.Equal(Bytes(current.Decode(latents)), Bytes(old.Decode(latents)));
    }

    [Fact]
    public void BothNamingsAtOnceAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = TestPaths.CreateTempDirectory();
        File.Copy(Path.Combine(VaeTestModels.Sd2Folder, "config.json"), dir.File("config.json"));
        var weights = ReadWeights(VaeTestModels.Sd2Folder);
        weights["encoder.mid_block.attentions.0.query.weight"] = weights["encoder.mid_block.attentions.0.to_q.weight"];
        SafetensorsWriter.Write(dir.File("diffusion_pytorch_model.safetensors"), weights);

        var ex = Assert.Throws<InvalidWeightsException>(() => AutoencoderKL.FromFolder(dir.Path));
        Assert.Contains("to_q.weight", ex.Message);
    }

    [Fact]
    public void LegacyNamesOfTheRealVaesMapOntoTheModule()
    {
        var variants = Directory.EnumerateDirectories(Path.Combine(TestPaths.FixturesRoot, "real-size"))
            .Where(d => File.Exists(Path.Combine(d, "vae", "state_dict_shapes.json"))).ToArray();
        Assert.NotEmpty(variants);
        foreach (string variant in variants)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(variant, "vae", "state_dict_shapes.json")));
            var legacyNames = doc.RootElement.EnumerateObject().Select(p => ToLegacyName(p.Name)).ToArray();
            Assert.Equal(16, legacyNames.Count(VaeWeightNames.IsLegacyName));

            using var vae = new AutoencoderKL(AutoencoderKLConfig.Load(Path.Combine(variant, "vae", "config.json")), ComponentFactories.Meta);
            Assert.Equal(vae.state_dict().Keys.Order(StringComparer.Ordinal), legacyNames.Select(VaeWeightNames.ToCurrentName).Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [InlineData("encoder.mid_block.attentions.0.query.weight", "encoder.mid_block.attentions.0.to_q.weight")]
    [InlineData("decoder.mid_block.attentions.0.key.bias", "decoder.mid_block.attentions.0.to_k.bias")]
    [InlineData("decoder.mid_block.attentions.0.value.weight", "decoder.mid_block.attentions.0.to_v.weight")]
    [InlineData("encoder.mid_block.attentions.0.proj_attn.bias", "encoder.mid_block.attentions.0.to_out.0.bias")]
    [InlineData("encoder.mid_block.attentions.0.to_q.weight", "encoder.mid_block.attentions.0.to_q.weight")]
    [InlineData("encoder.mid_block.attentions.0.group_norm.weight", "encoder.mid_block.attentions.0.group_norm.weight")]
    [InlineData("encoder.down_blocks.0.resnets.0.conv1.weight", "encoder.down_blocks.0.resnets.0.conv1.weight")]
    [InlineData("key.weight", "key.weight")]
    public void LegacyNamesMapToCurrentNames(string stored, string expected)
    {
        Assert.Equal(expected, VaeWeightNames.ToCurrentName(stored));
        Assert.Equal(stored != expected, VaeWeightNames.IsLegacyName(stored));
    }

    private static byte[] Bytes(torch.Tensor t) => t.contiguous().bytes.ToArray();

    private static Dictionary<string, torch.Tensor> ReadWeights(string folder)
    {
        using var source = StateDictSource.OpenComponent(folder);
        return source.Names.ToDictionary(n => n, n => source.Read(n));
    }

    private static string ToLegacyName(string name) => name
        .Replace(".attentions.0.to_q.", ".attentions.0.query.")
        .Replace(".attentions.0.to_k.", ".attentions.0.key.")
        .Replace(".attentions.0.to_v.", ".attentions.0.value.")
        .Replace(".attentions.0.to_out.0.", ".attentions.0.proj_attn.");
}
