using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Lora;

public sealed class LoraNetworkTests
{
    [Theory]
    [InlineData("tiny-sd1")]
    [InlineData("tiny-sd2")]
    public void NewNetworkKeepsModelNamesAndOutputsAndNamesItsOwnParametersLikeKohya(string caseName)
    {
        using var scope = torch.NewDisposeScope();
        string pipeline = Path.Combine(TestPaths.FixturesRoot, caseName, "pipeline");
        using var unet = LoraTestModels.UNet(pipeline);
        using var te = LoraTestModels.TextEncoder(pipeline);
        var unetNames = unet.state_dict().Keys.ToArray();
        var teNames = te.state_dict().Keys.ToArray();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var noGrad = torch.no_grad();
        var before = unet.call(sample, t, text);

        using var network = LoraNetwork.Create(unet, LoraUNetModules.All, te, LoraTextEncoderModules.All, new LoraOptions(Rank: 4, Alpha: 2));
        network.Install();
        Assert.Equal(unetNames, unet.state_dict().Keys);
        Assert.Equal(teNames, te.state_dict().Keys);
        Assert.True(unet.call(sample, t, text).equal(before).all().item<bool>(), "zero-initialised up weights must not change the output");

        // Every transformer projection, attention, feed-forward and ResNet conv has one adapter; the text encoder 6 per layer.
        int transformers = unet.named_modules().Count(m => m.module is AttnDreamBooth.Models.UNet.Transformer2DModel);
        int blocks = unet.AttentionLayers.Count / 2;
        int resnetConvs = unet.named_modules().Count(m => System.Text.RegularExpressions.Regex.IsMatch(m.name, @"resnets\.\d+\.(conv1|conv2|conv_shortcut)$"));
        Assert.Equal(2 * transformers + blocks * 10 + resnetConvs, network.Adapters.Count(a => a.Component == LoraComponent.UNet));
        Assert.Equal(6 * te.Config.NumHiddenLayers, network.Adapters.Count(a => a.Component == LoraComponent.TextEncoder));
        var keys = network.state_dict().Keys.ToArray();
        Assert.Equal(2 * network.Adapters.Count, keys.Length);
        Assert.All(keys, k => Assert.Matches(@"^lora_(unet|te)_[a-z0-9_]+\.lora_(down|up)\.weight$", k));
        Assert.Contains("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_up.weight", keys);
        Assert.Equal(network.parameters().Sum(p => p.numel()), network.ParameterCount);

        LoraTestModels.Randomize(network, 5);
        Assert.False(unet.call(sample, t, text).allclose(before, atol: 1e-3));
        network.Remove();
        Assert.True(unet.call(sample, t, text).equal(before).all().item<bool>(), "removing the hooks must restore the model");
    }

    [Fact]
    public void RecordingAndRegularizationWorkWithAdaptersInstalledAndOnlyAdaptersGetGradients()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = LoraTestModels.UNet(TestPaths.TinySd2);
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var store = new AttentionMapStore();
        var crossPaths = unet.AttentionLayers.Where(l => l.IsCrossAttention).Select(l => l.Path).ToArray();

        Dictionary<string, torch.Tensor> Record()
        {
            store.Clear();
            using (torch.no_grad()) unet.call(sample, t, text);
            return store.Maps.ToDictionary(m => m.LayerPath, m => m.Probabilities.clone());
        }

        using var session = unet.Attach(store, AttentionTokenSelection.Positions(1, 2));
        var plain = Record();
        using var network = LoraNetwork.Create(unet, LoraUNetModules.CrossAttention, null, LoraTextEncoderModules.None, new LoraOptions(Rank: 2));
        Assert.Equal(4 * crossPaths.Length, network.Adapters.Count);
        LoraTestModels.Randomize(network, 9, upStd: 1.0);
        network.Install();
        // The processors are the recording ones, untouched by installing adapters.
        Assert.All(crossPaths, p => Assert.IsType<RecordingAttentionProcessor>(unet.AttentionProcessors[p]));
        var adapted = Record();
        Assert.Equal(crossPaths, adapted.Keys);
        Assert.Contains(crossPaths, p => !adapted[p].allclose(plain[p], atol: 1e-5));
        network.Merge();
        var merged = Record();
        network.Unmerge();
        foreach (string p in crossPaths) Assert.True(merged[p].allclose(adapted[p], rtol: 1e-4, atol: 1e-5), p);

        // Regularization through the adapters: gradient reaches the adapter weights and nothing else.
        foreach (var p in unet.parameters()) p.requires_grad = false;
        store.Clear();
        var output = unet.call(sample, t, text);
        var pairs = store.Maps.Select(m => AttentionMapRegularization.SelectTokens(m.Probabilities, torch.tensor(new long[] { 0, 0 }), torch.tensor(new long[] { 1, 1 }), m.LayerPath)).ToArray();
        var regularization = new AttentionMapRegularization(1.0, 1.0).Compute(pairs);
        regularization.backward(retain_graph: true);
        // The maps depend on every layer's query and key projections.
        foreach (var a in network.Adapters.Where(a => a.ModulePath.EndsWith("to_q", StringComparison.Ordinal) || a.ModulePath.EndsWith("to_k", StringComparison.Ordinal)))
            Assert.True(a.UpWeight.grad is not null && a.UpWeight.grad.abs().sum().item<float>() > 0, a.ModulePath);
        output.pow(Kept(2)).mean().backward();
        Assert.All(network.parameters(), p => Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0));
        Assert.All(unet.parameters(), p => Assert.Null(p.grad));
        network.Remove();
    }

    [Fact]
    public void ScalesPerComponentAndBadTargetsAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = LoraTestModels.UNet(TestPaths.TinySd1);
        using var te = LoraTestModels.TextEncoder(TestPaths.TinySd1);
        using var network = LoraNetwork.Create(unet, LoraUNetModules.CrossAttention, te, LoraTextEncoderModules.SelfAttention, new LoraOptions());
        network.SetScale(LoraComponent.TextEncoder, 0.25);
        Assert.All(network.Adapters, a => Assert.Equal(a.Component == LoraComponent.TextEncoder ? 0.25 : 1.0, a.Scale));
        using (var byPath = LoraNetwork.Create(unet, ["time_embedding.linear_1"], te, ["text_model.encoder.layers.0.mlp.fc1"], new LoraOptions()))
            Assert.Equal([(LoraComponent.UNet, "time_embedding.linear_1"), (LoraComponent.TextEncoder, "text_model.encoder.layers.0.mlp.fc1")],
                byPath.Adapters.Select(a => (a.Component, a.ModulePath)));
        Assert.Throws<ArgumentException>(() => LoraNetwork.Create(unet, ["down_blocks.0.attentions.0.norm"], null, [], new LoraOptions()));
        Assert.Throws<ArgumentException>(() => LoraNetwork.Create(unet, ["no.such.module"], null, [], new LoraOptions()));
        Assert.Throws<ArgumentException>(() => LoraNetwork.Create(unet, [], null, ["text_model.encoder.layers.0.mlp.fc1"], new LoraOptions()));
        Assert.Throws<ArgumentNullException>(() => LoraNetwork.Create(null, LoraUNetModules.All, null, LoraTextEncoderModules.None, new LoraOptions()));
        network.Install();
        Assert.Throws<InvalidOperationException>(() => network.Install());
        network.Remove();
    }
}
