using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Vae;

namespace AttnDreamBooth.Tests.Models.Vae;

public sealed class AutoencoderKLConfigTests
{
    [Fact]
    public void TinyConfigsLoadWithTheirValues()
    {
        var sd1 = AutoencoderKLConfig.Load(Path.Combine(TestPaths.TinySd1, "vae", "config.json"));
        var sd2 = AutoencoderKLConfig.Load(Path.Combine(TestPaths.TinySd2, "vae", "config.json"));

        Assert.Equal([32, 64], sd1.BlockOutChannels);
        Assert.Equal(2, sd1.LayersPerBlock);
        Assert.Equal(32, sd1.NormNumGroups);
        Assert.Equal(1, sd2.LayersPerBlock);
        Assert.Equal(16, sd2.NormNumGroups);
        Assert.Equal(0.18215, sd1.ScalingFactor);
        Assert.Equal(2, sd1.DownsampleFactor);
        Assert.Equal(64, sd2.SampleSize);
    }

    [Fact]
    public void RealSizeConfigsHaveSpatialFactorEight()
    {
        var configs = Directory.EnumerateDirectories(Path.Combine(TestPaths.FixturesRoot, "real-size"))
            .Select(d => Path.Combine(d, "vae", "config.json")).Where(File.Exists).ToArray();
        Assert.NotEmpty(configs);
        foreach (string path in configs)
        {
            var config = AutoencoderKLConfig.Load(path);
            Assert.Equal(8, config.DownsampleFactor);
            Assert.Equal(4, config.LatentChannels);
        }
    }

    [Fact]
    public void MissingKeysTakeDiffusersDefaults()
    {
        var config = AutoencoderKLConfig.FromReader(ConfigReader.Parse("{\"_class_name\": \"AutoencoderKL\", \"some_future_key\": 1}"));
        Assert.Equal(new AutoencoderKLConfig().BlockOutChannels, config.BlockOutChannels);
        Assert.Equal(3, config.InChannels);
        Assert.Equal(3, config.OutChannels);
        Assert.Equal(4, config.LatentChannels);
        Assert.Equal(1, config.LayersPerBlock);
        Assert.Equal(32, config.NormNumGroups);
        Assert.Equal(32, config.SampleSize);
        Assert.Equal("silu", config.ActFn);
        Assert.True(config.MidBlockAddAttention);
        Assert.Equal(1, config.DownsampleFactor);
    }

    [Fact]
    public void ListSampleSizeUsesItsFirstEntry()
    {
        var config = AutoencoderKLConfig.FromReader(ConfigReader.Parse("{\"sample_size\": [96, 128]}"));
        Assert.Equal(96, config.SampleSize);
    }

    [Theory]
    [InlineData("{\"block_out_channels\": [32, 64], \"down_block_types\": [\"DownEncoderBlock2D\"], \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}", "down_block_types")]
    [InlineData("{\"down_block_types\": [\"CrossAttnDownBlock2D\"]}", "down_block_types")]
    [InlineData("{\"up_block_types\": [\"UpBlock2D\"]}", "up_block_types")]
    [InlineData("{\"block_out_channels\": [48], \"norm_num_groups\": 32}", "block_out_channels")]
    [InlineData("{\"act_fn\": \"tanh\"}", "act_fn")]
    [InlineData("{\"layers_per_block\": 0}", "layers_per_block")]
    [InlineData("{\"latent_channels\": \"four\"}", "latent_channels")]
    public void InvalidValuesNameTheKey(string json, string key)
    {
        var ex = Assert.Throws<ModelConfigException>(() => AutoencoderKLConfig.FromReader(ConfigReader.Parse(json, "vae/config.json")));
        Assert.Equal(key, ex.Key);
        Assert.Contains("vae/config.json", ex.Message);
    }

    [Fact]
    public void ConstructorRejectsInvalidRecord()
    {
        var config = new AutoencoderKLConfig { BlockOutChannels = [32, 64], DownBlockTypes = ["DownEncoderBlock2D"] };
        var ex = Assert.Throws<ArgumentException>(() => new AutoencoderKL(config, ComponentFactoriesMeta));
        Assert.Contains("down_block_types", ex.Message);
    }

    private static TorchSharp.torch.Device ComponentFactoriesMeta => ComponentFactories.Meta;
}
