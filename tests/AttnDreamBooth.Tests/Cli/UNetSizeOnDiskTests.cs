using AttnDreamBooth.Cli;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.Cli;

public sealed class UNetSizeOnDiskTests
{
    [Theory]
    [InlineData("tiny-sd1")]
    [InlineData("tiny-sd2")]
    public void The_headers_give_the_loaded_u_nets_parameter_count(string fixture)
    {
        using var components = StableDiffusionComponents.Load(Path.Combine(TestPaths.FixturesRoot, fixture, "pipeline"));
        long loaded = components.UNet.parameters().Sum(p => p.numel());
        Assert.Equal(loaded, UNetSizeOnDisk.Parameters(Path.Combine(TestPaths.FixturesRoot, fixture, "pipeline")));
        // A single file holds the same U-Net under its original key names, next to the VAE and text encoder.
        Assert.Equal(loaded, UNetSizeOnDisk.Parameters(Path.Combine(TestPaths.FixturesRoot, fixture, "single-file", "model.safetensors")));
    }

    [Fact]
    public void What_the_headers_cannot_tell_is_null()
    {
        using var dir = TestPaths.CreateTempDirectory();
        Assert.Null(UNetSizeOnDisk.Parameters(dir.File("missing")));
        Directory.CreateDirectory(dir.File("empty"));
        Assert.Null(UNetSizeOnDisk.Parameters(dir.File("empty")));
        File.WriteAllBytes(dir.File("model.ckpt"), [1, 2, 3]);
        Assert.Null(UNetSizeOnDisk.Parameters(dir.File("model.ckpt")));
        File.WriteAllBytes(dir.File("broken.safetensors"), [255, 255, 255, 255, 255, 255, 255, 127, 0]);
        Assert.Null(UNetSizeOnDisk.Parameters(dir.File("broken.safetensors")));
    }
}
