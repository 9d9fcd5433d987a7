using AttnDreamBooth.Models.UNet;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Models.UNet;

/// <summary>
/// The U-Net's gradients with respect to its inputs (what stage 1 back-propagates into the concept embedding) agree
/// with a float64 copy of the same model. Regression: on AVX-512 CPUs libtorch's float32 convolution returned a wrong,
/// sometimes NaN, input gradient for <c>conv_out</c> (4 output channels).
/// </summary>
public sealed class UNetInputGradientTests
{
    [Theory]
    [InlineData("sd1")]
    [InlineData("sd2")]
    public void InputGradientsMatchFloat64(string which)
    {
        string folder = Path.Combine(which == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2, "unet");
        using var unet32 = UNet2DConditionModel.FromFolder(folder);
        using var unet64 = UNet2DConditionModel.FromFolder(folder, dtype: ScalarType.Float64);
        var gen = new Generator(42);
        var sample = randn([2, 4, 16, 16], generator: gen);
        var text = randn([2, 77, 32], generator: gen);
        var upstream = randn([2, 4, 16, 16], generator: gen);
        var timesteps = tensor(new long[] { 10, 700 });

        (Tensor Sample, Tensor Text) Gradients(UNet2DConditionModel unet, ScalarType dtype)
        {
            var s = sample.to_type(dtype).detach().clone().requires_grad_(true);
            var e = text.to_type(dtype).detach().clone().requires_grad_(true);
            var output = unet.call(s, timesteps, e);
            var grads = torch.autograd.grad([output], [s, e], [upstream.to_type(dtype)]);
            return (grads[0], grads[1]);
        }

        var g32 = Gradients(unet32, ScalarType.Float32);
        var g64 = Gradients(unet64, ScalarType.Float64);
        foreach (var (name, got, want) in new[] { ("sample", g32.Sample, g64.Sample), ("encoder_hidden_states", g32.Text, g64.Text) })
        {
            Assert.True(got.isfinite().all().item<bool>(), $"{which}: d/d{name} has NaN or Inf");
            double scale = want.abs().max().item<double>();
            double error = got.to_type(ScalarType.Float64).sub(want).abs().max().item<double>();
            // float32 rounding through ~20 layers: 1e-4 of the largest gradient is ~100x the observed float32 error.
            Assert.True(error <= 1e-4 * scale, $"{which}: d/d{name} max error {error:g3} (largest |gradient| {scale:g3})");
        }
    }
}
