using AttnDreamBooth.Models.UNet;
using TorchSharp;

namespace AttnDreamBooth.Tests.Models.UNet;

public sealed class UNet2DConditionModelTests
{
    [Fact]
    public void TimestepMayBeScalarOrPerRowIntegerOrFloat()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, _, text) = TinyUNet.Inputs(unet);
        using var noGrad = torch.no_grad();
        var perRow = unet.call(sample, torch.tensor(new long[] { 500, 500 }), text);
        Assert.Equal(sample.shape, perRow.shape);
        Assert.True(unet.call(sample, torch.tensor(500L), text).allclose(perRow, rtol: 0, atol: 0));
        Assert.True(unet.call(sample, torch.tensor(new long[] { 500 }), text).allclose(perRow, rtol: 0, atol: 0));
        Assert.True(unet.call(sample, torch.tensor(500.0f), text).allclose(perRow, rtol: 0, atol: 0));
        Assert.True(unet.call(sample, torch.tensor(new[] { 500.0, 500.0 }), text).allclose(perRow, rtol: 0, atol: 0));
        var other = unet.call(sample, torch.tensor(new long[] { 500, 10 }), text);
        Assert.True(other[0].allclose(perRow[0], rtol: 0, atol: 0));
        Assert.False(other[1].allclose(perRow[1], rtol: 1e-3, atol: 1e-4));
    }

    [Fact]
    public void BadInputsAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var noGrad = torch.no_grad();
        Assert.Throws<ArgumentException>(() => unet.call(sample, torch.tensor(new long[] { 1, 2, 3 }), text));
        Assert.Throws<ArgumentException>(() => unet.call(sample, torch.zeros(2, 1, dtype: torch.int64), text));
        Assert.Throws<ArgumentException>(() => unet.call(sample[.., ..3], t, text));
        Assert.Throws<ArgumentException>(() => unet.call(sample, t, text[..1]));
        Assert.Throws<ArgumentException>(() => unet.call(sample, t, torch.zeros(2, 77, 5)));
    }

    [Fact]
    public void SizesNotDivisibleByTheDownsampleFactorUpsampleToTheSkipSize()
    {
        using var scope = torch.NewDisposeScope();
        using var unet = TinyUNet.Load();
        Assert.Equal(2, unet.DownsampleFactor);
        var (sample, t, text) = TinyUNet.Inputs(unet, height: 11, width: 13);
        using var noGrad = torch.no_grad();
        var output = unet.call(sample, t, text);
        Assert.Equal(sample.shape, output.shape);
        Assert.True(output.isfinite().all().item<bool>());
    }

    [Fact]
    public void ParametersAreCreatedOnTheRequestedDevice()
    {
        var config = UNetConfig.Load(Path.Combine(TestPaths.TinySd1, "unet", "config.json"));
        using var unet = new UNet2DConditionModel(config, ComponentFactoriesMeta);
        Assert.All(unet.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
    }

    private static readonly torch.Device ComponentFactoriesMeta = new(DeviceType.META);
}
