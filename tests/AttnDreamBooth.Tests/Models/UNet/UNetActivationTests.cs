using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Models.UNet;

/// <summary>The U-Net's <c>act_fn</c> comes from the shared activation table: any diffusers name the table implements
/// builds and runs (resnets, timestep MLP, output), and any other name is the table's <see cref="ModelConfigException"/>
/// naming <c>act_fn</c>.</summary>
public sealed class UNetActivationTests
{
    private static readonly string TinyConfig = Path.Combine(TestPaths.TinySd1, "unet", "config.json");

    private static Tensor Run(UNet2DConditionModel source, string actFn)
    {
        using var unet = new UNet2DConditionModel(source.Config with { ActFn = actFn });
        unet.load_state_dict(source.state_dict());
        unet.eval();
        var (sample, t, text) = TinyUNet.Inputs(unet, seed: 5);
        using var noGrad = torch.no_grad();
        return unet.call(sample, t, text);
    }

    [Fact]
    public void AnotherDiffusersActivationBuildsAndRuns()
    {
        using var scope = NewDisposeScope();
        using var silu = TinyUNet.Load(TestPaths.TinySd1);
        var reference = Run(silu, "silu");
        var mish = Run(silu, "mish");
        Assert.Equal(reference.shape, mish.shape);
        Assert.True(torch.isfinite(mish).all().item<bool>());
        // Same weights, another nonlinearity: the output moves (the table's function is the one applied).
        Assert.True(mish.sub(reference).abs().max().item<float>() > 1e-3f);
        // swish is diffusers' alias of silu: the same bits.
        Assert.True(Run(silu, "swish").eq(reference).all().item<bool>());
    }

    [Fact]
    public void AMishConfigFileLoads()
    {
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(path, File.ReadAllText(TinyConfig).Replace("\"act_fn\": \"silu\"", "\"act_fn\": \"mish\""));
        Assert.Equal("mish", UNetConfig.Load(path).ActFn);
    }

    [Fact]
    public void AnUnknownActivationIsRefusedNamingActFn()
    {
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(path, File.ReadAllText(TinyConfig).Replace("\"act_fn\": \"silu\"", "\"act_fn\": \"tanh\""));
        var file = Assert.Throws<ModelConfigException>(() => UNetConfig.Load(path));
        Assert.Equal(("act_fn", path), (file.Key, file.FilePath));
        Assert.Contains("silu, swish, gelu, relu, mish", file.Message);

        var record = Assert.Throws<ModelConfigException>(() => new UNet2DConditionModel(UNetConfig.Load(TinyConfig) with { ActFn = "tanh" }, ComponentFactories.Meta));
        Assert.Equal("act_fn", record.Key);
    }
}
