using AttnDreamBooth.Models.Attention;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Attention;

public sealed class AttentionRecordingTests
{
    [Fact]
    public void SelfAttentionNeverRunsExplicitSoftmaxWhileRecording()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var store = new AttentionMapStore();
        var kernels = new List<(string Path, AttentionKernel Kernel)>();

        // The recommended installation: only cross-attention gets the recorder.
        using (var session = unet.Attach(store, AttentionTokenSelection.Positions(1, 2)))
        {
            session.Processor.KernelObserver = (path, kernel) => kernels.Add((path, kernel));
            foreach (var (path, processor) in unet.AttentionProcessors.Where(p => p.Key.EndsWith(".attn1", StringComparison.Ordinal)))
                Assert.IsType<ScaledDotProductAttentionProcessor>(processor);
            using (torch.no_grad()) unet.call(sample, t, text);
        }
        var crossPaths = unet.AttentionLayers.Where(l => l.IsCrossAttention).Select(l => l.Path).ToArray();
        Assert.Equal(crossPaths, kernels.Select(k => k.Path));
        Assert.All(kernels, k => Assert.Equal(AttentionKernel.ExplicitSoftmax, k.Kernel));

        // Worst case: the recorder installed on EVERY layer still keeps self-attention on the fused kernel and records nothing there.
        kernels.Clear();
        var everywhere = new RecordingAttentionProcessor(store, AttentionTokenSelection.All) { KernelObserver = (path, kernel) => kernels.Add((path, kernel)) };
        unet.SetAttentionProcessor(everywhere);
        using (torch.no_grad()) unet.call(sample, t, text);
        Assert.Equal(unet.AttentionLayers.Count, kernels.Count);
        foreach (var layer in unet.AttentionLayers)
        {
            var kernel = Assert.Single(kernels, k => k.Path == layer.Path).Kernel;
            Assert.Equal(layer.IsCrossAttention ? AttentionKernel.ExplicitSoftmax : AttentionKernel.Fused, kernel);
        }
        Assert.Equal(crossPaths, store.LayerPaths);
    }

    [Fact]
    public void RecordingLeavesTheOutputUnchanged()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var noGrad = torch.no_grad();
        var plain = unet.call(sample, t, text);
        using var store = new AttentionMapStore();
        using (unet.Attach(store, AttentionTokenSelection.Positions(3)))
        {
            var recorded = unet.call(sample, t, text);
            Assert.True(recorded.allclose(plain, rtol: 1e-5, atol: 1e-6), $"max diff {recorded.sub(plain).abs().max().item<float>()}");
        }
        Assert.All(unet.AttentionProcessors.Values, p => Assert.Same(ScaledDotProductAttentionProcessor.Instance, p));
    }

    [Fact]
    public void RecordedMapsHaveTheLayerLayoutAndSelectedColumns()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet, height: 12, width: 16);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.All);
        using var noGrad = torch.no_grad();
        unet.call(sample, t, text);
        var all = store.Maps.ToDictionary(m => m.LayerPath, m => m.Probabilities.clone());

        var perRow = torch.tensor(new long[,] { { 4, 5 }, { 7, 8 } });
        session.Tokens = AttentionTokenSelection.PerRow(perRow);
        unet.call(sample, t, text);
        Assert.Equal(all.Keys, store.LayerPaths);
        foreach (var map in store.Maps)
        {
            var info = unet.GetAttentionLayer(map.LayerPath).Info;
            Assert.Equal((12 / info.DownscaleFactor, 16 / info.DownscaleFactor), (map.Height, map.Width));
            Assert.Equal(new long[] { 2, info.Heads, map.Pixels, 2 }, map.Probabilities.shape);
            var full = all[map.LayerPath];
            Assert.True(full.sum(-1).allclose(torch.ones_like(full.sum(-1)), atol: 1e-5));
            Assert.True(map.Probabilities[0].equal(full[0][.., .., 4..6]).all().item<bool>());
            Assert.True(map.Probabilities[1].equal(full[1][.., .., 7..9]).all().item<bool>());
            var images = map.AsImages();
            Assert.Equal(new long[] { 2, 2, map.Height, map.Width }, images.shape);
        }
    }

    [Fact]
    public void RecordedMapsCarryGradientsToTheUNetAndTheTextStates()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        text.requires_grad_(true);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.PerRow(new long[,] { { 1, 2 }, { 3, 4 } }));
        unet.call(sample, t, text);
        Assert.All(store.Maps, m => Assert.True(m.Probabilities.requires_grad));

        // A loss on the maps alone (the shape of the AttnDreamBooth regularizer: per-token mean and variance gaps).
        var loss = torch.zeros([]);
        foreach (var map in store.Maps)
        {
            var p = map.Probabilities;
            var mean = p.mean([1L, 2L]);
            var variance = p.var([1L, 2L]);
            loss = loss.add((mean[.., 0] - mean[.., 1]).pow(Kept(2)).sum(), One).add((variance[.., 0] - variance[.., 1]).pow(Kept(2)).sum(), One);
        }
        loss.backward();

        var textGrad = text.grad;
        Assert.NotNull(textGrad);
        Assert.True(textGrad!.abs().sum().item<float>() > 0);
        var parameters = unet.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (string name in new[]
                 {
                     "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                     "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight",
                     "conv_in.weight",
                 })
        {
            var grad = parameters[name].grad;
            Assert.NotNull(grad);
            Assert.True(grad!.abs().sum().item<float>() > 0, $"{name} received no gradient");
        }
        // The last recorded layer's value projection influences no recorded probability, so it gets no gradient.
        var toV = parameters[session.LayerPaths[^1] + ".to_v.weight"].grad;
        Assert.True(toV is null || toV.abs().sum().item<float>() == 0);
        store.Clear();
    }

    [Fact]
    public void StoreIsClearedPerForwardAndEmptyAfterClear()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.Positions(0, 1));
        using var noGrad = torch.no_grad();
        unet.call(sample, t, text);
        int layers = session.LayerPaths.Count;
        Assert.Equal(layers, store.Count);
        var first = store.Maps[0].Probabilities;

        unet.call(sample, t, text);
        Assert.Equal(layers, store.Count);
        Assert.True(first.IsInvalid, "the previous forward's maps must be released");

        var held = store.Maps.Select(m => m.Probabilities).ToArray();
        store.Clear();
        Assert.Equal(0, store.Count);
        Assert.Empty(store.Maps);
        Assert.All(held, h => Assert.True(h.IsInvalid));
        Assert.False(store.TryGet(session.LayerPaths[0], out _));
        Assert.Throws<KeyNotFoundException>(() => store[session.LayerPaths[0]]);

        store.IsRecording = false;
        unet.call(sample, t, text);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void BadTokenSelectionsAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.Positions(77));
        using var noGrad = torch.no_grad();
        Assert.Throws<ArgumentOutOfRangeException>(() => unet.call(sample, t, text));
        session.Tokens = AttentionTokenSelection.PerRow(new long[,] { { 1 }, { 2 }, { 3 } });
        Assert.Throws<ArgumentException>(() => unet.call(sample, t, text));
        Assert.Throws<ArgumentException>(() => AttentionTokenSelection.PerRow(torch.zeros(2, 2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionTokenSelection.Positions(-1));
    }
}
