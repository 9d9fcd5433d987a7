using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Lora;

public sealed class LoraFileTests
{
    private static string KohyaFixture(string lora) => Path.Combine(TestPaths.FixturesRoot, lora, "kohya", "lora.safetensors");

    [Theory]
    [InlineData(LoraFileFormat.Kohya)]
    [InlineData(LoraFileFormat.Diffusers)]
    public void SaveThenLoadGivesTheSameUpdates(LoraFileFormat format)
    {
        using var scope = torch.NewDisposeScope();
        using var dir = TestPaths.CreateTempDirectory();
        using var unet = LoraTestModels.UNet(TestPaths.TinySd1);
        using var te = LoraTestModels.TextEncoder(TestPaths.TinySd1);
        using var network = LoraNetwork.Create(unet, LoraUNetModules.All, te, LoraTextEncoderModules.All, new LoraOptions(Rank: 3, Alpha: 1.5));
        LoraTestModels.Randomize(network, 21);
        string file = dir.File("lora.safetensors");
        network.Save(file, format);
        using var loaded = LoraNetwork.Load(file, unet, te);
        Assert.Equal(new HashSet<LoraFileFormat> { format }, loaded.LoadReport!.Formats);
        Assert.Equal(network.Adapters.Count, loaded.Adapters.Count);
        foreach (var a in network.Adapters)
        {
            var b = loaded.Find(a.Component, a.ModulePath)!;
            Assert.NotNull(b);
            Assert.Equal(a.Rank, b.Rank);
            if (format == LoraFileFormat.Kohya)
            {
                Assert.Equal(a.Alpha, b.Alpha);
                Assert.True(a.DownWeight.equal(b.DownWeight).all().item<bool>() && a.UpWeight.equal(b.UpWeight).all().item<bool>());
            }
            Assert.True(a.WeightDelta(1).allclose(b.WeightDelta(1), rtol: 1e-6, atol: 1e-7), a.KohyaName);
        }
        using var file2 = SafetensorsFile.Open(file);
        if (format == LoraFileFormat.Kohya)
        {
            Assert.Equal("networks.lora", file2.Metadata["ss_network_module"] is "lycoris.kohya" ? "networks.lora" : file2.Metadata["ss_network_module"]);
            Assert.Equal("3", file2.Metadata["ss_network_dim"]);
            Assert.Empty(file2.Entries["lora_unet_down_blocks_0_resnets_0_conv1.alpha"].Shape);
        }
        else
        {
            Assert.DoesNotContain(file2.Names, n => n.EndsWith(".alpha", StringComparison.Ordinal));
            Assert.Contains("unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight", file2.Names);
            Assert.Contains("text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight", file2.Names);
        }
    }

    [Fact]
    public void UnknownKeysThrowByDefaultAndAreReportedOnRequest()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = TestPaths.CreateTempDirectory();
        using var source = SafetensorsFile.Open(KohyaFixture("tiny-sd1-lora"));
        var tensors = source.ReadAll();
        tensors["lora_unet_no_such_layer.lora_down.weight"] = torch.zeros(4, 32);
        tensors["lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"] = torch.zeros(37, 4);
        tensors["unet.time_embedding.norm.lora.down.weight"] = torch.zeros(4, 32);
        tensors["something_else"] = torch.zeros(1);
        string file = dir.File("extra.safetensors");
        SafetensorsWriter.Write(file, tensors);
        using var unet = LoraTestModels.UNet(TestPaths.TinySd1);
        using var te = LoraTestModels.TextEncoder(TestPaths.TinySd1);

        var ex = Assert.Throws<InvalidWeightsException>(() => LoraNetwork.Load(file, unet, te));
        Assert.Equal(file, ex.FilePath);
        Assert.Contains("4 key(s)", ex.Message);
        Assert.Contains("lora_unet_no_such_layer.lora_down.weight", ex.Message);

        using var network = LoraNetwork.Load(file, unet, te, new LoraLoadOptions(ReportUnknownKeys: true));
        Assert.Equal(
            new[] { "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", "lora_unet_no_such_layer.lora_down.weight", "something_else", "unet.time_embedding.norm.lora.down.weight" },
            network.LoadReport!.UnknownKeys.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(source.Names.Count / 3, network.Adapters.Count);

        // Without a text encoder, its keys are unknown too (not silently skipped).
        var noText = Assert.Throws<InvalidWeightsException>(() => LoraNetwork.Load(KohyaFixture("tiny-sd1-lora"), unet, null));
        Assert.Contains("TextEncoder, which was not given", noText.Message);
    }

    [Fact]
    public void IncompleteOrMisShapedModulesAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = TestPaths.CreateTempDirectory();
        using var unet = LoraTestModels.UNet(TestPaths.TinySd2);
        const string module = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
        string missingUp = dir.File("a.safetensors");
        SafetensorsWriter.Write(missingUp, new Dictionary<string, torch.Tensor> { [module + ".lora_down.weight"] = torch.zeros(4, 32) });
        Assert.Contains("has no up weight", Assert.Throws<InvalidWeightsException>(() => LoraNetwork.Load(missingUp, unet, null)).Message);

        string wrong = dir.File("b.safetensors");
        SafetensorsWriter.Write(wrong, new Dictionary<string, torch.Tensor>
        {
            [module + ".lora_down.weight"] = torch.zeros(4, 31),
            [module + ".lora_up.weight"] = torch.zeros(32, 4),
        });
        var ex = Assert.Throws<InvalidWeightsException>(() => LoraNetwork.Load(wrong, unet, null));
        Assert.Equal(module + ".lora_down.weight", ex.TensorName);

        string badAlpha = dir.File("c.safetensors");
        SafetensorsWriter.Write(badAlpha, new Dictionary<string, torch.Tensor>
        {
            [module + ".lora_down.weight"] = torch.zeros(4, 32),
            [module + ".lora_up.weight"] = torch.zeros(32, 4),
            [module + ".alpha"] = torch.tensor(-1f),
        });
        Assert.Contains("alpha", Assert.Throws<InvalidWeightsException>(() => LoraNetwork.Load(badAlpha, unet, null)).Message);

        string notSafetensors = dir.File("d.safetensors");
        File.WriteAllBytes(notSafetensors, [1, 2, 3]);
        Assert.Throws<InvalidWeightsException>(() => LoraNetwork.Load(notSafetensors, unet, null));
    }

    [Fact]
    public void PeftSpellingAndProjectionLayoutsLoad()
    {
        // A PEFT-style file (lora_A / lora_B, optional alpha) and a kohya file with 4-D [r, C, 1, 1] weights for the SD 2.x
        // linear proj_in: both load and give the stated updates.
        using var scope = torch.NewDisposeScope();
        using var dir = TestPaths.CreateTempDirectory();
        using var unet = LoraTestModels.UNet(TestPaths.TinySd2);
        var g = new torch.Generator(3);
        var down = torch.randn([2, 32], generator: g);
        var up = torch.randn([32, 2], generator: g);
        string file = dir.File("peft.safetensors");
        SafetensorsWriter.Write(file, new Dictionary<string, torch.Tensor>
        {
            ["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_q.lora_A.weight"] = torch.randn([2, 64], generator: g),
            ["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_q.lora_B.weight"] = torch.randn([64, 2], generator: g),
            ["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_q.lora_A.weight".Replace("mid_block", "down_blocks.0").Replace("attn2.to_q", "attn1.to_q")] = down,
            ["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight"] = up,
            ["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.alpha"] = torch.tensor(1f),
            ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"] = down.reshape(2, 32, 1, 1),
            ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"] = up.reshape(32, 2, 1, 1),
        });
        using var network = LoraNetwork.Load(file, unet, null);
        Assert.Equal(3, network.Adapters.Count);
        var q = network.Find(LoraComponent.UNet, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q")!;
        Assert.True(q.WeightDelta(1).allclose(up.matmul(down).mul(Kept(0.5)), atol: 1e-6));
        var proj = network.Find(LoraComponent.UNet, "down_blocks.0.attentions.0.proj_in")!;
        Assert.Equal(LoraLayerKind.Linear, proj.Kind);
        Assert.True(proj.WeightDelta(1).allclose(up.matmul(down), atol: 1e-6));
        Assert.Equal(new HashSet<LoraFileFormat> { LoraFileFormat.Kohya, LoraFileFormat.Diffusers }, network.LoadReport!.Formats);
    }
}
