using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Blocks;

/// <summary>
/// Convolutions with channel counts that libtorch's AVX-512 CPU kernels get wrong must be right: the bfloat16 forward
/// pass and the float32 input gradient with an output-channel count that is not a multiple of 16, and the float32
/// forward pass with more than 16 input channels that are not a multiple of 16. Compared with a float64 convolution of
/// the same weights.
/// </summary>
public sealed class NarrowChannelConvolutionTests
{
    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(24)]
    public void BFloat16ForwardMatchesFloat64WithinBFloat16Precision(long outChannels)
    {
        using var scope = NewDisposeScope();
        var conv = nn.Conv2d(32, outChannels, 3, padding: 1);
        using (no_grad()) foreach (var p in conv.parameters()) p.copy_(randn(p.shape, generator: new Generator((ulong)outChannels)).mul(Kept(0.05)));
        var input = randn([1, 32, 16, 16], generator: new Generator(7));
        var reference = nn.functional.conv2d(input.to_type(ScalarType.Float64), conv.weight!.to_type(ScalarType.Float64), conv.bias!.to_type(ScalarType.Float64), padding: [1, 1]);
        conv.to(ScalarType.BFloat16);
        using var noGrad = no_grad();
        var actual = NarrowChannelConvolution.Apply(conv, input.to_type(ScalarType.BFloat16)).to_type(ScalarType.Float64);
        double relative = (actual - reference).abs().max().item<double>() / reference.abs().max().item<double>();
        // bfloat16 keeps 8 significant bits; 32-term dot products of rounded inputs stay within a few 2^-8.
        Assert.True(relative < 0.02, $"relative error {relative}");
        Assert.True(actual.is_contiguous());
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(8)]
    public void Float32InputGradientMatchesFloat64(long outChannels)
    {
        using var scope = NewDisposeScope();
        var conv = nn.Conv2d(32, outChannels, 3, padding: 1);
        using (no_grad()) foreach (var p in conv.parameters()) p.copy_(randn(p.shape, generator: new Generator((ulong)outChannels)).mul(Kept(0.05)));
        var input = randn([2, 32, 8, 8], generator: new Generator(11)).requires_grad_(true);
        var upstream = randn([2, outChannels, 8, 8], generator: new Generator(12));
        NarrowChannelConvolution.Apply(conv, input).mul(upstream).sum().backward();
        var input64 = input.detach().to_type(ScalarType.Float64).requires_grad_(true);
        nn.functional.conv2d(input64, conv.weight!.detach().to_type(ScalarType.Float64), conv.bias!.detach().to_type(ScalarType.Float64), padding: [1, 1])
            .mul(upstream.to_type(ScalarType.Float64)).sum().backward();
        var expected = input64.grad!;
        double error = (input.grad!.to_type(ScalarType.Float64) - expected).abs().max().item<double>();
        Assert.True(error <= 1e-5 * expected.abs().max().item<double>(), $"max |error| {error}");
    }

    [Theory]
    [InlineData(24, 16, 1)]
    [InlineData(24, 8, 1)]
    [InlineData(17, 32, 2)]
    [InlineData(40, 16, 2)]
    [InlineData(8, 4, 1)]
    [InlineData(3, 8, 1)]
    public void Float32ForwardAndGradientsMatchFloat64WhenFreedMemoryHeldNaN(long inChannels, long outChannels, long stride)
    {
        var conv = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1);
        using (no_grad()) foreach (var p in conv.parameters()) p.copy_(randn(p.shape, generator: new Generator((ulong)(inChannels * 100 + outChannels))).mul(Kept(0.1)));
        var input = randn([4, inChannels, 16, 16], generator: new Generator(21));
        long side = 16 / stride;
        var upstream = randn([4, outChannels, side, side], generator: new Generator(22));
        var input64 = input.to_type(ScalarType.Float64).requires_grad_(true);
        var weight64 = conv.weight!.detach().to_type(ScalarType.Float64).requires_grad_(true);
        var expected = nn.functional.conv2d(input64, weight64, conv.bias!.detach().to_type(ScalarType.Float64), strides: [stride, stride], padding: [1, 1]);
        expected.mul(upstream.to_type(ScalarType.Float64)).sum().backward();
        // The wrong kernel paths read uninitialised lanes: several runs, each after NaN-filled memory was freed.
        for (int run = 0; run < 6; run++)
        {
            using var scope = NewDisposeScope();
            conv.zero_grad();
            var x = input.clone().requires_grad_(true);
            FreedMemory.PoisonWithNaN();
            var output = NarrowChannelConvolution.Apply(conv, x, stride, 1);
            FreedMemory.PoisonWithNaN();
            output.mul(upstream).sum().backward();
            AssertClose(output.detach(), expected.detach(), $"run {run}: output");
            AssertClose(x.grad!, input64.grad!, $"run {run}: input gradient");
            AssertClose(conv.weight!.grad!, weight64.grad!, $"run {run}: weight gradient");
        }
    }

    private static void AssertClose(Tensor actual, Tensor expected, string what)
    {
        var got = actual.to_type(ScalarType.Float64);
        Assert.True(got.isfinite().all().item<bool>(), $"{what} is not finite");
        double error = (got - expected).abs().max().item<double>(), scale = expected.abs().max().item<double>();
        Assert.True(error <= 1e-5 * scale, $"{what}: max |error| {error} at scale {scale}");
    }
}
