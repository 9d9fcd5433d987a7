using System.Text.Json.Nodes;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Models.Blocks;

/// <summary>
/// Models with 8-channel blocks (the Shapes world's tiny architecture) run every spatial convolution — resnets, down- and
/// upsamplers, <c>conv_in</c> — through <see cref="AttnDreamBooth.Models.Blocks.NarrowChannelConvolution"/>: libtorch's
/// AVX-512 CPU kernel returns NaN or wrong input gradients for such convolutions on some CPUs, in about half the calls.
/// An up-block resnet of an [8, 16] U-Net takes 16 + 8 = 24 concatenated channels, whose float32 forward pass the same
/// kernel gets wrong. The float32 output and input gradient of the whole model must match the same model in float64,
/// several times over, each time after NaN-filled memory was freed (the wrong paths read lanes they never wrote).
/// </summary>
public sealed class NarrowChannelModelTests
{
    private static string Config(string component, Action<JsonObject> change, TempDirectory dir)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.TinySd2, component, "config.json")))!.AsObject();
        change(config);
        string path = dir.File(component + ".json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    [Fact]
    public void AnEightChannelUNetsInputGradientMatchesFloat64()
    {
        using var unet = NarrowUNet(8, 8);
        AssertUNetMatches(unet);
    }

    [Fact]
    public void AUNetWhoseUpBlockConcatenates24ChannelsMatchesFloat64()
    {
        using var unet = NarrowUNet(8, 16);
        Assert.Equal(24, unet.named_parameters().Single(p => p.name == "up_blocks.0.resnets.2.conv1.weight").parameter.shape[1]);
        AssertUNetMatches(unet);
    }

    /// <summary>The tiny SD 2.x U-Net with two blocks of the given widths (4 groups, 2 heads), seeded.</summary>
    private static UNet2DConditionModel NarrowUNet(int first, int second)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = Config("unet", c =>
        {
            c["block_out_channels"] = new JsonArray(first, second);
            c["attention_head_dim"] = new JsonArray(2, 2);
            c["norm_num_groups"] = 4;
        }, dir);
        manual_seed(3);
        return new UNet2DConditionModel(UNetConfig.Load(path), CPU);
    }

    private static void AssertUNetMatches(UNet2DConditionModel unet)
    {
        var text = randn([2, 7, 32], generator: new Generator(5));
        AssertInputGradientMatches(unet, randn([2, 4, 16, 16], generator: new Generator(4)), x => unet.call(x, tensor(10L), text.to_type(x.dtype)));
    }

    [Fact]
    public void AnEightChannelVaesInputGradientsMatchFloat64()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = Config("vae", c =>
        {
            c["block_out_channels"] = new JsonArray(8, 8);
            c["norm_num_groups"] = 4;
        }, dir);
        manual_seed(3);
        using var vae = new AutoencoderKL(AutoencoderKLConfig.Load(path), CPU);
        AssertInputGradientMatches(vae, randn([2, 3, 16, 16], generator: new Generator(6)), x => vae.EncodeLatents(x));
        AssertInputGradientMatches(vae, randn([2, 4, 8, 8], generator: new Generator(7)), vae.Decode);
    }

    [Fact]
    public void LoraRefusesTheConvolutionsThatTakeTheWorkaroundPath()
    {
        using var unet = NarrowUNet(8, 16);
        // conv_in (4 → 8 channels), the 8-channel resnets and the up-block resnet that takes 16 + 8 channels: their
        // hooks would never run.
        using var narrow = LoraNetwork.Create(unet, ["down_blocks.0.resnets.0.conv1"], null, [], new LoraOptions(Rank: 2));
        var error = Assert.Throws<ArgumentException>(narrow.Install);
        Assert.Contains("down_blocks.0.resnets.0.conv1", error.Message);
        Assert.Contains("8 output channels", error.Message);
        // 16 output channels take the module's own path: the adapter installs.
        using var wide = LoraNetwork.Create(unet, ["down_blocks.1.resnets.0.conv1"], null, [], new LoraOptions(Rank: 2));
        wide.Install();
        using var concatenated = LoraNetwork.Create(unet, ["up_blocks.0.resnets.2.conv1"], null, [], new LoraOptions(Rank: 2));
        Assert.Contains("24 input channels", Assert.Throws<ArgumentException>(concatenated.Install).Message);
    }

    private static void AssertInputGradientMatches(nn.Module model, Tensor input, Func<Tensor, Tensor> forward)
    {
        var upstream = randn(forward(input).shape, generator: new Generator(9));
        model.to(ScalarType.Float64);
        var x64 = input.to_type(ScalarType.Float64).requires_grad_(true);
        var output64 = forward(x64);
        output64.mul(upstream.to_type(ScalarType.Float64)).sum().backward();
        var expected = x64.grad!.detach().clone();
        var expectedOutput = output64.detach().clone();
        model.to(ScalarType.Float32);
        for (int run = 0; run < 4; run++)
        {
            using var scope = NewDisposeScope();
            var x = input.detach().clone().requires_grad_(true);
            FreedMemory.PoisonWithNaN();
            var output = forward(x);
            FreedMemory.PoisonWithNaN();
            output.mul(upstream).sum().backward();
            var outputError = (output.detach().to_type(ScalarType.Float64) - expectedOutput).abs().max().item<double>();
            Assert.True(outputError <= 1e-4 * expectedOutput.abs().max().item<double>(), $"run {run}: output max |error| {outputError}");
            var got = x.grad!.to_type(ScalarType.Float64);
            Assert.True(got.isfinite().all().item<bool>(), $"run {run}: non-finite input gradient");
            double error = (got - expected).abs().max().item<double>(), scale = expected.abs().max().item<double>();
            Assert.True(error <= 1e-4 * scale, $"run {run}: max |error| {error} at scale {scale}");
        }
    }
}
