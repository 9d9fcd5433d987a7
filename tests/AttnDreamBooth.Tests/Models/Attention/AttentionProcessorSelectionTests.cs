using AttnDreamBooth.Models.Attention;
using TorchSharp;

namespace AttnDreamBooth.Tests.Models.Attention;

public sealed class AttentionProcessorSelectionTests
{
    [Fact]
    public void LayersAreListedByDiffusersPath()
    {
        using var unet = TinyUNet.Load();
        var paths = unet.AttentionProcessors.Keys.ToHashSet();
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.attn1", paths);
        Assert.Contains("mid_block.attentions.0.transformer_blocks.0.attn2", paths);
        Assert.Contains("up_blocks.1.attentions.2.transformer_blocks.0.attn2", paths);
        var expected = unet.named_modules().Where(m => m.module is AttnDreamBooth.Models.Attention.Attention).Select(m => m.name).ToHashSet();
        Assert.Equal(expected, paths);
        Assert.All(unet.AttentionLayers, l => Assert.Equal(l.Path.EndsWith(".attn2", StringComparison.Ordinal), l.IsCrossAttention));
        Assert.Equal(unet.AttentionLayers.Count(l => l.IsCrossAttention), unet.AttentionLayers.Count(l => !l.IsCrossAttention));
    }

    [Fact]
    public void ProcessorsSetByPathAffectExactlyThoseLayers()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        var counting = new CountingProcessor();
        string[] chosen = ["down_blocks.0.attentions.1.transformer_blocks.0.attn1", "mid_block.attentions.0.transformer_blocks.0.attn2"];
        unet.SetAttentionProcessor(chosen.ToDictionary(p => p, _ => (IAttentionProcessor)counting));
        foreach (var (path, processor) in unet.AttentionProcessors)
        {
            if (chosen.Contains(path)) Assert.Same(counting, processor);
            else Assert.Same(ScaledDotProductAttentionProcessor.Instance, processor);
        }
        using (torch.no_grad()) unet.call(sample, t, text);
        Assert.Equal(chosen, counting.Calls.Select(c => c.Path));

        var before = unet.AttentionProcessors;
        var bad = new Dictionary<string, IAttentionProcessor> { ["no.such.layer"] = counting, [chosen[0]] = ScaledDotProductAttentionProcessor.Instance };
        var error = Assert.Throws<ArgumentException>(() => unet.SetAttentionProcessor(bad));
        Assert.Contains("no.such.layer", error.Message);
        Assert.Equal(before, unet.AttentionProcessors);
    }

    [Fact]
    public void ProcessorsSetByPredicateAffectExactlyTheMatchingLayers()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet, height: 12, width: 16);

        var cross = new CountingProcessor();
        int changed = unet.SetAttentionProcessor(info => info.IsCrossAttention ? cross : null);
        var crossPaths = unet.AttentionLayers.Where(l => l.IsCrossAttention).Select(l => l.Path).ToArray();
        Assert.Equal(crossPaths.Length, changed);
        using (torch.no_grad()) unet.call(sample, t, text);
        Assert.Equal(crossPaths, cross.Calls.Select(c => c.Path));

        // By resolution: only the full-resolution layers, which must see the full 12 x 16 grid.
        unet.ResetAttentionProcessors();
        var fullResolution = new CountingProcessor();
        unet.SetAttentionProcessor(info => info.DownscaleFactor == 1 ? fullResolution : null);
        using (torch.no_grad()) unet.call(sample, t, text);
        var expected = unet.AttentionLayers.Where(l => l.DownscaleFactor == 1).Select(l => l.Path).ToArray();
        Assert.NotEmpty(expected);
        Assert.True(expected.Length < unet.AttentionLayers.Count);
        Assert.Equal(expected, fullResolution.Calls.Select(c => c.Path));
        Assert.All(fullResolution.Calls, c => Assert.Equal((12, 16), (c.Height, c.Width)));

        // Every layer sees (H / factor) x (W / factor).
        var all = new CountingProcessor();
        unet.SetAttentionProcessor(all);
        using (torch.no_grad()) unet.call(sample, t, text);
        foreach (var (path, h, w) in all.Calls)
        {
            int f = unet.GetAttentionLayer(path).DownscaleFactor;
            Assert.Equal((12 / f, 16 / f), (h, w));
        }
    }
}
