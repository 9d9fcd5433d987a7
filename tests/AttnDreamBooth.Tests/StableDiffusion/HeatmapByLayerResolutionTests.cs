using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;

namespace AttnDreamBooth.Tests.StableDiffusion;

/// <summary>The per-layer-resolution maps of a generation's heatmaps: one per cross-attention resolution, normalised like
/// the all-layer map, and the same as it when the U-Net has a single cross-attention resolution.</summary>
public sealed class HeatmapByLayerResolutionTests
{
    [Fact]
    public async Task EveryCrossAttentionResolutionHasItsOwnNormalisedMapOnTheSameGrid()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var options = new GenerationOptions { Steps = 3, Seed = 4, BatchSize = 2, HeatmapTokens = ["dog", "red"], HeatmapResolution = 8 };
        var images = await pipeline.GenerateAsync("a red dog", options);
        foreach (var image in images)
        {
            foreach (var map in image.Heatmaps.Values)
            {
                // The tiny U-Net has cross-attention at two latent heights (down/up blocks and the mid block): the same
                // keys as the word shares, largest first.
                var keys = map.ByLayerResolution.Keys.ToArray();
                Assert.Equal(2, keys.Length);
                Assert.Equal(map.WordShares.Keys, keys);
                foreach (var (h, byHeight) in map.ByLayerResolution)
                {
                    Assert.Equal((map.Token, 8, 64), (byHeight.Token, byHeight.Resolution, byHeight.Values.Length));
                    Assert.All(byHeight.Values, v => Assert.InRange(v, 0f, 1f));
                    Assert.Equal((0f, 1f), (byHeight.Values.Min(), byHeight.Values.Max()));
                    Assert.Empty(byHeight.ByLayerResolution);
                    Assert.Empty(byHeight.WordShares);
                }
                // Two resolutions attend differently, so neither map is the all-layer one.
                Assert.NotEqual(map.ByLayerResolution[keys[0]].Values, map.ByLayerResolution[keys[1]].Values);
            }
        }
    }

    [Fact]
    public async Task WithOneCrossAttentionResolutionItsMapIsTheAllLayerMapBitForBit()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string model = dir.File("one-resolution");
        TestPaths.CopyDirectory(TestPaths.TinySd1, model);
        // A single-block U-Net never downsamples: its down, mid and up cross-attention layers share one latent grid.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "unet", "config.json")))!.AsObject();
        config["block_out_channels"] = new JsonArray(32);
        config["down_block_types"] = new JsonArray("CrossAttnDownBlock2D");
        config["up_block_types"] = new JsonArray("CrossAttnUpBlock2D");
        File.WriteAllText(Path.Combine(model, "unet", "config.json"), config.ToJsonString());
        torch.manual_seed(3);
        using (var unet = new UNet2DConditionModel(UNetConfig.Load(Path.Combine(model, "unet", "config.json"))))
            SafetensorsWriter.Write(Path.Combine(model, "unet", "diffusion_pytorch_model.safetensors"), unet.state_dict());

        using var pipeline = PersonalizationPipeline.FromPretrained(model).Build();
        var options = new GenerationOptions { Steps = 2, Seed = 1, Width = 32, Height = 32, HeatmapTokens = ["dog"], HeatmapResolution = 8 };
        var map = (await pipeline.GenerateAsync("a red dog", options))[0].Heatmaps["dog"];
        var only = Assert.Single(map.ByLayerResolution);
        Assert.Equal(map.WordShares.Keys, [only.Key]);
        Assert.True(map.Values.Max() - map.Values.Min() > 0.5f, "the map is not flat");
        Assert.Equal(map.Values, only.Value.Values);
    }
}
