using AttnDreamBooth.Imaging;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Personalization;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Imaging;

public sealed class HeatmapTests
{
    [Fact]
    public void Aggregate_averages_heads_and_layers_at_the_chosen_resolution()
    {
        // Layer 0: 4x4 grid, 2 heads, token 1 holds the pixel index in head 0 and 0 in head 1 -> mean = index / 2.
        var fine = torch.zeros(1, 2, 16, 3);
        fine[0, 0, torch.TensorIndex.Colon, 1] = torch.arange(Kept(0), Kept(16), Kept(1), dtype: torch.float32);
        // Layer 1: 2x2 grid, constant 3 on token 1 -> stays 3 after bilinear resizing.
        var coarse = torch.zeros(1, 2, 4, 3);
        coarse[0, torch.TensorIndex.Colon, torch.TensorIndex.Colon, 1] = torch.tensor(3f);
        var maps = AttentionHeatmaps.Aggregate([(fine, 4, 4), (coarse, 2, 2)], 4);
        Assert.Equal(new long[] { 1, 3, 4, 4 }, maps.shape);
        Assert.Equal((5 / 2.0 + 3) / 2, maps[0, 1, 1, 1].item<float>(), 5);   // pixel index 5 = (y 1, x 1)
        Assert.Equal(0f, maps[0, 0].abs().max().item<float>());
        Assert.Throws<ArgumentException>(() => AttentionHeatmaps.Aggregate([(fine, 3, 4)], 4));
        Assert.Throws<ArgumentException>(() => AttentionHeatmaps.Aggregate([], 4));
    }

    [Fact]
    public void AggregateByHeight_leaves_the_all_layer_maps_bit_identical_and_averages_each_resolution_alone()
    {
        torch.manual_seed(5);
        var fine0 = torch.rand(2, 2, 16, 3).softmax(-1);
        var coarse = torch.rand(2, 2, 4, 3).softmax(-1);
        var fine1 = torch.rand(2, 2, 16, 3).softmax(-1);
        (torch.Tensor, int, int)[] layers = [(fine0, 4, 4), (coarse, 2, 2), (fine1, 4, 4)];
        var (all, byHeight) = AttentionHeatmaps.AggregateByHeight(layers, 8);
        Assert.Equal(Bits(AttentionHeatmaps.Aggregate(layers, 8)), Bits(all));
        Assert.Equal([4, 2], byHeight.Keys);
        Assert.Equal(Bits(AttentionHeatmaps.Aggregate([layers[0], layers[2]], 8)), Bits(byHeight[4]));
        Assert.Equal(Bits(AttentionHeatmaps.Aggregate([layers[1]], 8)), Bits(byHeight[2]));
        // The all-layer map is the layer-count-weighted mean of the resolutions' maps.
        Assert.True(torch.allclose(byHeight[4].mul(Kept(2)).add(byHeight[2], One).div(Kept(3)), all, rtol: 1e-6, atol: 1e-7));

        // One resolution: its map is the all-layer map, bit for bit (the same additions in the same order).
        var (one, oneByHeight) = AttentionHeatmaps.AggregateByHeight([layers[0], layers[2]], 4);
        Assert.Equal(Bits(one), Bits(Assert.Single(oneByHeight).Value));
    }

    private static int[] Bits(torch.Tensor t) => t.contiguous().data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Fact]
    public void Normalize_scales_each_map_to_unit_range()
    {
        var n = HeatmapRenderer.Normalize(torch.tensor(new float[] { 0, 2, 4, 6, 5, 5, 5, 5 }).view(2, 2, 2));
        Assert.Equal(new float[] { 0, 1 / 3f, 2 / 3f, 1, 0, 0, 0, 0 }, n.flatten().data<float>().ToArray());
    }

    [Fact]
    public void Overlay_colours_high_attention_red_and_low_blue()
    {
        var gray = new RgbImage(4, 2, Enumerable.Repeat((byte)100, 24).ToArray());
        var map = torch.tensor(new float[] { 0, 0, 1, 1 }).view(1, 4).expand(2, 4).contiguous();
        var full = HeatmapRenderer.Overlay(gray, map, alpha: 1);
        Assert.Equal(new RgbColor(0, 0, 128), full[0, 0]);     // jet(0) = dark blue
        Assert.Equal(new RgbColor(128, 0, 0), full[3, 1]);     // jet(1) = dark red
        Assert.Equal(gray.Pixels, HeatmapRenderer.Overlay(gray, map, alpha: 0).Pixels);
        Assert.Equal((8, 6), (HeatmapRenderer.Render(map, 8, 6).Width, HeatmapRenderer.Render(map, 8, 6).Height));
        Assert.Throws<ArgumentException>(() => HeatmapRenderer.Overlay(gray, map, alpha: 2));
    }

    [Fact]
    public void Tensor_to_image_and_png_round_trip()
    {
        var t = torch.tensor(new float[] { -1, 0, 1, 2, /* G */ 0, 0, 0, 0, /* B */ 1, 1, -1, -3 }).view(3, 2, 2);
        var image = RgbImageConversions.FromTensor(t);
        Assert.Equal(new RgbColor(0, 128, 255), image[0, 0]);
        Assert.Equal(new RgbColor(255, 128, 0), image[1, 1]);   // clamped
        Assert.Throws<ArgumentException>(() => RgbImageConversions.FromTensor(torch.zeros(2, 2, 2)));

        using var dir = TestPaths.CreateTempDirectory();
        var big = ConceptImageTransform.Augment(image, 64, ImageAugmentationOptions.None, null);
        big.SavePng(dir.File("x.png"));
        var back = RgbImage.Load(dir.File("x.png"));
        Assert.Equal(big.Pixels, back.Pixels);
    }
}
