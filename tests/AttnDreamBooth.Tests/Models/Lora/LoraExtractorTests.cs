using AttnDreamBooth.Models.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Lora;

public sealed class LoraExtractorTests
{
    /// <summary>Adds up·down (rank <paramref name="rank"/>, seeded) to the weight of <paramref name="path"/>.</summary>
    private static torch.Tensor AddLowRankDelta(torch.nn.Module model, string path, int rank, long seed)
    {
        var layer = LoraTargets.Layers(model).Single(l => l.Path == path).Layer;
        var w = layer is Linear l ? l.weight! : ((Conv2d)layer).weight;
        var g = new torch.Generator((ulong)seed);
        var up = torch.randn([w.shape[0], rank], generator: g);
        var down = torch.randn([rank, w[0].numel()], generator: g).div(Kept(10));
        var delta = up.matmul(down).reshape(w.shape);
        using (torch.no_grad()) w.add_(delta, One);
        return delta;
    }

    [Theory]
    [InlineData("tiny-sd1")]
    [InlineData("tiny-sd2")]
    public void KnownLowRankDeltasAreRecoveredExactly(string caseName)
    {
        using var scope = torch.NewDisposeScope();
        string pipeline = Path.Combine(TestPaths.FixturesRoot, caseName, "pipeline");
        using var baseUNet = LoraTestModels.UNet(pipeline);
        using var tuned = LoraTestModels.UNet(pipeline);
        using var baseText = LoraTestModels.TextEncoder(pipeline);
        using var tunedText = LoraTestModels.TextEncoder(pipeline);
        var changed = new (LoraComponent Component, string Path, int Rank)[]
        {
            (LoraComponent.UNet, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 2),
            (LoraComponent.UNet, "mid_block.attentions.0.proj_in", 3),
            (LoraComponent.UNet, "down_blocks.0.resnets.0.conv1", 2),
            (LoraComponent.UNet, "up_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj", 1),
            (LoraComponent.TextEncoder, "text_model.encoder.layers.0.mlp.fc1", 2),
        };
        long seed = 100;
        foreach (var c in changed) AddLowRankDelta(c.Component == LoraComponent.UNet ? tuned : tunedText, c.Path, c.Rank, seed++);

        // Energy threshold 1 picks exactly the true rank; every other layer is reported unchanged.
        using var extraction = LoraExtractor.Extract(baseUNet, tuned, baseText, tunedText, new LoraExtractionOptions(Rank: null, EnergyThreshold: 1.0));
        Assert.Equal(changed.Select(c => (c.Component, c.Path)).Order(), extraction.Layers.Select(l => (l.Component, l.ModulePath)).Order());
        foreach (var c in changed)
        {
            var layer = extraction.Layers.Single(l => l.ModulePath == c.Path);
            Assert.Equal(c.Rank, layer.Rank);
            Assert.True(layer.RelativeError < 1e-6, $"{c.Path}: relative error {layer.RelativeError:g3}");
            Assert.True(layer.DiscardedEnergyError < 1e-6, $"{c.Path}: discarded {layer.DiscardedEnergyError:g3}");
            Assert.True(layer.OutputRelativeError < 1e-6, $"{c.Path}: output error {layer.OutputRelativeError:g3}");
        }
        int considered = LoraTargets.Select(baseUNet, LoraUNetModules.All).Count + LoraTargets.Select(baseText, LoraTextEncoderModules.All).Count;
        Assert.Equal(considered - changed.Length, extraction.UnchangedLayers.Count);

        // Installed on the base models, the extracted LoRA gives the fine-tuned models' outputs.
        var (sample, t, text) = TinyUNet.Inputs(baseUNet);
        var ids = torch.tensor(new long[,] { { 49406, 320, 1125, 539, 320, 2368, 49407 } });
        using var noGrad = torch.no_grad();
        var want = tuned.call(sample, t, text);
        var wantText = tunedText.Forward(ids).LastHiddenState;
        var before = baseUNet.call(sample, t, text);
        extraction.Network.Install();
        var got = baseUNet.call(sample, t, text);
        var gotText = baseText.Forward(ids).LastHiddenState;
        extraction.Network.Remove();
        Assert.False(before.allclose(want, atol: 1e-3), "the deltas must change the U-Net output");
        Assert.True(got.allclose(want, rtol: 1e-4, atol: 1e-5), $"U-Net max diff {got.sub(want).abs().max().item<float>()}");
        Assert.True(gotText.allclose(wantText, rtol: 1e-4, atol: 1e-5), $"text max diff {gotText.sub(wantText).abs().max().item<float>()}");

        // A fixed rank above the true one also recovers it (the extra singular values are ~0).
        using var fixedRank = LoraExtractor.Extract(baseUNet, tuned, null, null, new LoraExtractionOptions(Rank: 4));
        Assert.All(fixedRank.Layers, l => Assert.True(l.RelativeError < 1e-6 && l.Rank == 4, l.ModulePath));
    }

    [Fact]
    public void RandomDeltaErrorEqualsTheDiscardedSingularValues()
    {
        using var scope = torch.NewDisposeScope();
        using var baseUNet = LoraTestModels.UNet(TestPaths.TinySd2);
        using var tuned = LoraTestModels.UNet(TestPaths.TinySd2);
        const string linear = "mid_block.attentions.0.transformer_blocks.0.attn1.to_v";
        const string conv = "up_blocks.1.resnets.0.conv1";
        var g = new torch.Generator(77);
        var deltas = new Dictionary<string, torch.Tensor>();
        foreach (string path in new[] { linear, conv })
        {
            var layer = LoraTargets.Layers(tuned).Single(l => l.Path == path).Layer;
            var w = layer is Linear l ? l.weight! : ((Conv2d)layer).weight;
            var d = torch.randn(w.shape, generator: g).mul(Kept(0.05));
            using (torch.no_grad()) w.add_(d, One);
            deltas[path] = d.to_type(torch.float64).flatten(1);
        }
        foreach (int rank in new[] { 1, 5, 12 })
        {
            using var extraction = LoraExtractor.Extract(baseUNet, tuned, null, null, new LoraExtractionOptions(Rank: rank));
            Assert.Equal(2, extraction.Layers.Count);
            foreach (var (path, d) in deltas)
            {
                var s = torch.linalg.svdvals(d).pow(Kept(2));
                double expected = Math.Sqrt(s[rank..].sum().item<double>() / s.sum().item<double>());
                var layer = extraction.Layers.Single(l => l.ModulePath == path);
                Assert.Equal(rank, layer.Rank);
                Assert.Equal(expected, layer.DiscardedEnergyError, 6);
                Assert.Equal(expected, layer.RelativeError, 5);
                Assert.InRange(layer.OutputRelativeError, 0.1 * expected, 1.0);
                Assert.True(layer.OutputMaxAbsError > 0);
            }
        }

        // An energy threshold picks the smallest rank that keeps that much of ‖ΔW‖².
        using var byEnergy = LoraExtractor.Extract(baseUNet, tuned, null, null, new LoraExtractionOptions(Rank: null, EnergyThreshold: 0.5));
        foreach (var (path, d) in deltas)
        {
            var s = torch.linalg.svdvals(d).pow(Kept(2));
            var kept = s.cumsum(0).div(s.sum());
            int want = (int)kept.lt(Kept(0.5)).sum().item<long>() + 1;
            Assert.Equal(want, byEnergy.Layers.Single(l => l.ModulePath == path).Rank);
            Assert.True(byEnergy.Layers.Single(l => l.ModulePath == path).DiscardedEnergyError <= Math.Sqrt(0.5) + 1e-9);
        }
    }

    [Fact]
    public void BadOptionsAndMismatchedModelsAreRejected()
    {
        using var sd1 = LoraTestModels.UNet(TestPaths.TinySd1);
        using var sd2 = LoraTestModels.UNet(TestPaths.TinySd2);
        Assert.Throws<ArgumentException>(() => LoraExtractor.Extract(sd1, sd1, null, null, new LoraExtractionOptions(Rank: 4, EnergyThreshold: 0.9)));
        Assert.Throws<ArgumentException>(() => LoraExtractor.Extract(sd1, sd1, null, null, new LoraExtractionOptions(Rank: null)));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoraExtractor.Extract(sd1, sd1, null, null, new LoraExtractionOptions(Rank: null, EnergyThreshold: 1.5)));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoraExtractor.Extract(sd1, sd1, null, null, new LoraExtractionOptions(Rank: 0)));
        Assert.Throws<ArgumentException>(() => LoraExtractor.Extract(sd1, sd2, null, null, new LoraExtractionOptions()));
        using var te = LoraTestModels.TextEncoder(TestPaths.TinySd1);
        Assert.Throws<ArgumentException>(() => LoraExtractor.Extract(sd1, sd1, te, null, new LoraExtractionOptions()));
    }
}
