using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Lora;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Lora;

/// <summary>
/// What training adapters needs beyond the forward pass: gradient checkpointing differentiates the adapters hooked inside
/// its recomputed blocks, the k×k "LoCon" down convolution (rank-many output channels) has the right input gradient on
/// every CPU, seeded initialisation is reproducible, and seeded dropout repeats its masks.
/// </summary>
public sealed class LoraTrainingPathTests(ITestOutputHelper output)
{
    private static Dictionary<string, Tensor> Step(LoraNetwork network, AttnDreamBooth.Models.UNet.UNet2DConditionModel unet, bool checkpointing)
    {
        foreach (var p in network.parameters()) p.grad = null;
        var (sample, t, text) = TinyUNet.Inputs(unet, batch: 2, height: 12, width: 16, seed: 21);
        var target = randn(sample.shape, generator: new Generator(4));
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.PerRow(new long[,] { { 2, 3 }, { 5, 6 } }));
        unet.GradientCheckpointing = checkpointing;
        var prediction = unet.call(sample, t, text);
        var mapLoss = zeros([]);
        foreach (var map in store.Maps)
        {
            var mean = map.Probabilities.mean([1L, 2L]);
            mapLoss = mapLoss.add((mean[.., 0] - mean[.., 1]).pow(Kept(2)).sum(), One);
        }
        nn.functional.mse_loss(prediction, target).add(mapLoss, One).backward();
        unet.GradientCheckpointing = false;
        return network.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
    }

    [Theory]
    [InlineData("sd1", LoraUNetModules.CrossAttention)]
    [InlineData("sd2", LoraUNetModules.All)]
    public void CheckpointedBlocksGiveTheAdaptersThePlainPathsGradients(string fixture, LoraUNetModules modules)
    {
        using var scope = NewDisposeScope();
        using var unet = TinyUNet.Load(fixture == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2);
        foreach (var p in unet.parameters()) p.requires_grad = false;
        using var network = LoraNetwork.Create(unet, modules, null, LoraTextEncoderModules.None, new LoraOptions(Rank: 3));
        LoraTestModels.Randomize(network, seed: 9, upStd: 0.05);
        network.Install();

        var plain = Step(network, unet, checkpointing: false);
        var checkpointed = Step(network, unet, checkpointing: true);

        // With only the adapters trainable, no block input needs a gradient: without the hooked parameters passed to the
        // checkpoint, the recomputation would never run and the adapters would get no gradient at all.
        Assert.Equal(network.named_parameters().Select(p => p.name).Order(), plain.Keys.Order());
        Assert.Equal(plain.Keys.Order(), checkpointed.Keys.Order());
        double global = plain.Values.Max(g => (double)g.abs().max().item<float>());
        Assert.True(global > 0);
        double worst = 0;
        foreach (var (name, grad) in plain)
        {
            double scale = grad.abs().max().item<float>();
            double diff = grad.sub(checkpointed[name]).abs().max().item<float>();
            double allowed = 2e-6 * scale + 1e-6 * global;
            worst = Math.Max(worst, diff / allowed);
            Assert.True(diff <= allowed, $"{name}: max |diff| {diff:E3}, max |grad| {scale:E3}");
        }
        output.WriteLine($"{plain.Count} adapter gradients; worst diff = {worst:F3} x the allowance");
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(5, 4)]
    [InlineData(3, 20)]
    public void AKxKAdapterHasTheFloat64InputAndWeightGradients(int kernel, int rank)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(17);
        var conv = nn.Conv2d(32, 40, kernel, padding: kernel / 2);
        using var network = LoraNetworkOn(conv, rank);
        var adapter = network.Adapters.Single();
        using (no_grad())
        {
            adapter.DownWeight.copy_(randn(adapter.DownWeight.shape, generator: g).mul(Kept(0.2)));
            adapter.UpWeight.copy_(randn(adapter.UpWeight.shape, generator: g).mul(Kept(0.2)));
        }
        var x = randn([2, 32, 8, 8], generator: g).requires_grad_(true);
        var weights = randn([2, 40, 8, 8], generator: g);
        adapter.call(x).mul(weights).sum().backward();

        // The same update in float64 with plain functional convolutions.
        var x64 = x.detach().to_type(ScalarType.Float64).requires_grad_(true);
        var down64 = adapter.DownWeight.detach().to_type(ScalarType.Float64).requires_grad_(true);
        var up64 = adapter.UpWeight.detach().to_type(ScalarType.Float64);
        var h = nn.functional.conv2d(x64, down64, padding: [kernel / 2, kernel / 2]);
        nn.functional.conv2d(h, up64).mul(Kept(adapter.Alpha / adapter.Rank)).mul(weights.to_type(ScalarType.Float64)).sum().backward();

        AssertClose("input", x64.grad!, x.grad!);
        AssertClose("lora_down", down64.grad!, adapter.DownWeight.grad!);
    }

    private static void AssertClose(string what, Tensor expected64, Tensor actual)
    {
        double scale = expected64.abs().max().item<double>();
        double diff = expected64.sub(actual.to_type(ScalarType.Float64)).abs().max().item<double>();
        Assert.True(scale > 0 && diff <= 1e-5 * scale, $"{what}: max |diff| {diff:E3} vs max |grad| {scale:E3}");
    }

    private static LoraNetwork LoraNetworkOn(nn.Module<Tensor, Tensor> conv, int rank)
    {
        var holder = new Holder(conv);
        return LoraNetwork.Create(holder, null, [(LoraComponent.UNet, "conv")], new LoraOptions(Rank: rank));
    }

    private sealed class Holder : nn.Module
    {
        private readonly nn.Module<Tensor, Tensor> conv;

        public Holder(nn.Module<Tensor, Tensor> conv) : base(nameof(Holder))
        {
            this.conv = conv;
            RegisterComponents();
        }
    }

    [Fact]
    public void SeededResetIsReproducibleAndStartsWithoutChangingTheLayer()
    {
        using var scope = NewDisposeScope();
        using var unet = TinyUNet.Load(TestPaths.TinySd1);
        using var a = LoraNetwork.Create(unet, LoraUNetModules.All, null, LoraTextEncoderModules.None, new LoraOptions(Rank: 4));
        using var b = LoraNetwork.Create(unet, LoraUNetModules.All, null, LoraTextEncoderModules.None, new LoraOptions(Rank: 4));
        a.ResetParameters(11);
        b.ResetParameters(11);
        foreach (var ((name, p), (_, q)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.True(p.detach().bytes.SequenceEqual(q.detach().bytes), $"{name} differs between two resets with the same seed");
        foreach (var adapter in a.Adapters)
        {
            double bound = 1 / Math.Sqrt(adapter.DownWeight[0].numel());
            Assert.InRange(adapter.DownWeight.abs().max().item<float>(), bound / 2, bound);
            Assert.Equal(0f, adapter.UpWeight.abs().max().item<float>());
        }
        b.ResetParameters(12);
        Assert.False(a.Adapters[0].DownWeight.detach().bytes.SequenceEqual(b.Adapters[0].DownWeight.detach().bytes));
    }

    [Fact]
    public void SeededDropoutRepeatsItsMasksFromASavedGeneratorState()
    {
        using var scope = NewDisposeScope();
        var linear = nn.Linear(16, 16);
        using var network = LoraNetwork.Create(new Holder(linear), null, [(LoraComponent.UNet, "conv")], new LoraOptions(Rank: 4, Dropout: 0.5));
        var adapter = network.Adapters.Single();
        LoraTestModels.Randomize(network, seed: 2);
        network.train();
        using var generator = new Generator(99);
        network.DropoutGenerator = generator;
        var x = ones([8, 16]);
        var state = generator.get_state().clone();
        var first = adapter.call(x).detach().clone();
        var second = adapter.call(x).detach().clone();
        generator.set_state(state);
        var repeated = adapter.call(x).detach().clone();
        Assert.True(first.bytes.SequenceEqual(repeated.bytes), "the same generator state must give the same mask");
        Assert.False(first.bytes.SequenceEqual(second.bytes), "consecutive calls draw new masks");
        network.eval();
        var noDropout = adapter.call(x);
        Assert.True(noDropout.bytes.SequenceEqual(adapter.call(x).bytes));
    }
}
