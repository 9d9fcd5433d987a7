using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;

namespace AttnDreamBooth.Tests.Models.UNet;

public sealed class UNetConfigTests
{
    private static UNetConfig Parse(string json) => UNetConfig.FromReader(ConfigReader.Parse(json, "unet/config.json"));

    [Fact]
    public void AttentionHeadDimListIsHeadsPerBlock_UpReversed_MidLast()
    {
        var config = UNetConfig.Load(Path.Combine(TestPaths.TinySd2, "unet", "config.json"));
        Assert.Equal([2, 4], config.HeadsPerDownBlock);
        Assert.Equal([16, 16], config.HeadDimPerDownBlock);
        Assert.Equal([4, 2], config.HeadsPerUpBlock);
        Assert.Equal(4, config.HeadsMidBlock);
        Assert.True(config.UseLinearProjection);
        Assert.True(config.UpcastAttention);
        Assert.Equal(16, config.NormNumGroups);
    }

    [Fact]
    public void AttentionHeadDimIntAppliesToEveryBlock()
    {
        var config = UNetConfig.Load(Path.Combine(TestPaths.TinySd1, "unet", "config.json"));
        Assert.Equal([8, 8], config.HeadsPerDownBlock);
        Assert.Equal([4, 8], config.HeadDimPerDownBlock);
        Assert.Equal(8, config.HeadsMidBlock);
        Assert.False(config.UseLinearProjection);
    }

    [Fact]
    public void MissingKeysTakeDiffusersDefaults()
    {
        var config = Parse("{}");
        Assert.Equal([320, 640, 1280, 1280], config.BlockOutChannels);
        Assert.Equal([8, 8, 8, 8], config.HeadsPerDownBlock);
        Assert.Equal([1280, 1280, 1280, 1280], config.CrossAttentionDim);
        Assert.Equal(1e-5, config.NormEps);
        Assert.Equal(1280, config.TimeEmbedDim);
        Assert.True(config.FlipSinToCos);
        Assert.Equal("UNetMidBlock2DCrossAttn", config.MidBlockType);
    }

    [Theory]
    [InlineData("""{"class_embed_type": "timestep"}""", "class_embed_type")]
    [InlineData("""{"addition_embed_type": "text_time"}""", "addition_embed_type")]
    [InlineData("""{"num_attention_heads": 8}""", "num_attention_heads")]
    [InlineData("""{"down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "AttnDownBlock2D"]}""", "down_block_types")]
    [InlineData("""{"attention_head_dim": [5, 10]}""", "attention_head_dim")]
    [InlineData("""{"attention_head_dim": 7}""", "attention_head_dim")]
    [InlineData("""{"only_cross_attention": [false, true, false, false]}""", "only_cross_attention")]
    [InlineData("""{"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}""", "mid_block_type")]
    [InlineData("""{"resnet_time_scale_shift": "scale_shift"}""", "resnet_time_scale_shift")]
    public void UnsupportedOrInvalidValuesAreRejectedNamingTheKey(string json, string key)
    {
        var error = Assert.Throws<ModelConfigException>(() => Parse(json));
        Assert.Equal(key, error.Key);
        Assert.Equal("unet/config.json", error.FilePath);
    }

    [Fact]
    public void MissingFileIsReported()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var error = Assert.Throws<ModelConfigException>(() => UNetConfig.Load(dir.File("config.json")));
        Assert.Equal(Path.GetFullPath(dir.File("config.json")), error.FilePath);
    }
}
