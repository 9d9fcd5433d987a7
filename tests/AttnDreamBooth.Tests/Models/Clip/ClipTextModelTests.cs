using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Text;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Clip;

public sealed class ClipTextModelTests
{
    private static string Encoder(string pipeline) => Path.Combine(pipeline, "text_encoder");

    private static torch.Tensor Ids(string pipeline, params string[] prompts) =>
        ClipTokenizer.FromFolder(Path.Combine(pipeline, "tokenizer")).EncodeToTensor(prompts);

    [Fact]
    public void ConfigReadsTheTinyCases()
    {
        var sd1 = ClipTextConfig.Load(Path.Combine(Encoder(TestPaths.TinySd1), "config.json"));
        var sd2 = ClipTextConfig.Load(Path.Combine(Encoder(TestPaths.TinySd2), "config.json"));
        Assert.Equal(("quick_gelu", 2, 32, 4, 8), (sd1.HiddenAct, sd1.NumHiddenLayers, sd1.HiddenSize, sd1.NumAttentionHeads, sd1.HeadDim));
        Assert.Equal(("gelu", 3, 37), (sd2.HiddenAct, sd2.NumHiddenLayers, sd2.IntermediateSize));
        Assert.Equal(2, sd1.EosTokenId);
    }

    [Fact]
    public void BadConfigValuesAreNamed()
    {
        var heads = Assert.Throws<ModelConfigException>(() => ClipTextConfig.FromReader(ConfigReader.Parse("{\"hidden_size\": 30, \"num_attention_heads\": 4}", "c.json")));
        Assert.Equal("num_attention_heads", heads.Key);
        var act = Assert.Throws<ModelConfigException>(() => ClipTextConfig.FromReader(ConfigReader.Parse("{\"hidden_act\": \"tanh\"}", "c.json")));
        Assert.Equal("hidden_act", act.Key);
    }

    [Fact]
    public void InputsEmbedsPathEqualsIdsPathBitForBit()
    {
        using var model = ClipTextModel.FromFolder(Encoder(TestPaths.TinySd2));
        using var noGrad = torch.no_grad();
        using var ids = Ids(TestPaths.TinySd2, "a photo of a sks dog", "a castle on a hill");
        using var direct = model.Forward(ids, outputHiddenStates: true);
        using var embeds = model.TokenEmbeddings(ids);
        using var spliced = model.Forward(ids, embeds, outputHiddenStates: true);
        Assert.True(direct.LastHiddenState.bytes.SequenceEqual(spliced.LastHiddenState.bytes));
        Assert.True(direct.PoolerOutput.bytes.SequenceEqual(spliced.PoolerOutput.bytes));
        Assert.Equal(model.Config.NumHiddenLayers + 1, direct.HiddenStates!.Count);
        Assert.Null(model.Forward(ids).HiddenStates);
    }

    [Fact]
    public void PoolsAtTheFirstEndToken()
    {
        using var model = ClipTextModel.FromFolder(Encoder(TestPaths.TinySd1));
        using var noGrad = torch.no_grad();
        using var ids = Ids(TestPaths.TinySd1, "a dog");
        using var output = model.Forward(ids);
        // BOS a dog EOS: the end token sits at index 3 (SD 1.x pads with EOS too; argmax takes the first).
        Assert.True(output.PoolerOutput[0].eq(output.LastHiddenState[0, 3]).all().item<bool>());
    }

    [Fact]
    public void PaddingMaskLeavesEarlierPositionsAloneAndMasksKeys()
    {
        using var model = ClipTextModel.FromFolder(Encoder(TestPaths.TinySd1));
        using var noGrad = torch.no_grad();
        using var ids = Ids(TestPaths.TinySd1, "a photo of a cat");
        using var plain = model.Forward(ids);
        using var ones = model.Forward(ids, attentionMask: torch.ones_like(ids));
        Assert.True(plain.LastHiddenState.allclose(ones.LastHiddenState, rtol: 0, atol: 1e-6));

        using var trailing = torch.ones_like(ids);
        trailing[0, TorchSharp.torch.TensorIndex.Slice(7)] = torch.tensor(0L);
        using var masked = model.Forward(ids, attentionMask: trailing);
        // Causality: the first 7 positions never see the padding anyway.
        Assert.True(plain.LastHiddenState[0, ..7].allclose(masked.LastHiddenState[0, ..7], rtol: 0, atol: 1e-6));
        Assert.False(plain.LastHiddenState[0, 7..].allclose(masked.LastHiddenState[0, 7..], rtol: 0, atol: 1e-3));
    }

    [Fact]
    public void BadInputsAreRejected()
    {
        using var model = new ClipTextModel(ClipTextConfig.Load(Path.Combine(Encoder(TestPaths.TinySd1), "config.json")));
        Assert.Throws<ArgumentNullException>(() => model.Forward(null));
        Assert.Throws<ArgumentException>(() => model.Forward(torch.zeros(1, 78, dtype: torch.int64)));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(torch.full(1, 5, Kept(49408L), dtype: torch.int64)));
        Assert.Throws<ArgumentException>(() => model.Forward(torch.zeros(1, 5, dtype: torch.int64), torch.zeros(1, 5, 31)));
        Assert.Throws<ArgumentException>(() => model.Forward(torch.zeros(1, 5, dtype: torch.float32)));
    }

    [Fact]
    public void LoadsOlderFilesWithPositionIdsAndConvertsDType()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using var model = ClipTextModel.FromFolder(Encoder(TestPaths.TinySd1));
        File.Copy(Path.Combine(Encoder(TestPaths.TinySd1), "config.json"), dir.File("config.json"));
        var tensors = model.state_dict().ToDictionary(p => p.Key, p => p.Value);
        tensors[ClipTextModel.PositionIdsKey] = torch.arange(Kept(0), Kept(77), Kept(1), dtype: torch.int64).unsqueeze(0);
        SafetensorsWriter.Write(dir.File("model.safetensors"), tensors);

        using var reloaded = ClipTextModel.FromFolder(dir.Path, dtype: torch.float64);
        Assert.All(reloaded.parameters(), p => Assert.Equal(torch.float64, p.dtype));
        using var noGrad = torch.no_grad();
        using var ids = Ids(TestPaths.TinySd1, "a photo of a cat");
        using var single = model.Forward(ids);
        using var dbl = reloaded.Forward(ids);
        Assert.True(dbl.LastHiddenState.to_type(torch.float32).allclose(single.LastHiddenState, rtol: 1e-4, atol: 1e-5));

        tensors["text_model.unexpected.weight"] = torch.zeros(1);
        SafetensorsWriter.Write(dir.File("model.safetensors"), tensors);
        Assert.Throws<InvalidWeightsException>(() => ClipTextModel.FromFolder(dir.Path));
    }

    [Fact]
    public void ResizeKeepsExistingRows()
    {
        using var model = ClipTextModel.FromFolder(Encoder(TestPaths.TinySd1));
        using var before = model.TokenEmbeddingWeight.detach().clone();
        model.ResizeTokenEmbeddings(before.shape[0] + 2);
        Assert.Equal(before.shape[0] + 2, model.TokenEmbeddingCount);
        Assert.True(model.TokenEmbeddingWeight.detach()[..(int)before.shape[0]].bytes.SequenceEqual(before.bytes));
        Assert.Contains("text_model.embeddings.token_embedding.weight", model.state_dict().Keys);
        Assert.Equal(0, model.TokenEmbeddingWeight.detach()[^1].abs().sum().item<float>());
    }
}
