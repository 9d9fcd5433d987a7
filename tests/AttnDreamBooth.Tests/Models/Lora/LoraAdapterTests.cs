using AttnDreamBooth.Models.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Lora;

public sealed class LoraAdapterTests
{
    private static (Tensor Down, Tensor Up) Fill(LoraAdapter a, long seed)
    {
        var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        a.DownWeight.copy_(randn(a.DownWeight.shape, generator: g));
        a.UpWeight.copy_(randn(a.UpWeight.shape, generator: g));
        return (a.DownWeight.detach().clone(), a.UpWeight.detach().clone());
    }

    [Fact]
    public void LinearAdapterAddsScaledLowRankUpdate()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var layer = nn.Linear(6, 5);
        using var adapter = new LoraAdapter(LoraComponent.UNet, "x.to_q", layer, rank: 3, alpha: 1.5);
        var x = randn(4, 6, generator: new Generator(3));
        var plain = layer.call(x);
        // A new adapter (up = 0) changes nothing.
        adapter.Install(layer);
        Assert.True(layer.call(x).equal(plain).all().item<bool>());
        var (down, up) = Fill(adapter, 5);
        adapter.Scale = 0.7;
        var expected = plain.add(x.matmul(down.t()).matmul(up.t()).mul(Kept(0.7 * 1.5 / 3)), One);
        var got = layer.call(x);
        Assert.True(got.allclose(expected, rtol: 1e-5, atol: 1e-5), $"max diff {got.sub(expected).abs().max().item<float>()}");
        Assert.False(got.allclose(plain, atol: 1e-3));

        // Merged: same function, the hook adds nothing, and the weight is W + s (alpha/r) up down.
        var w0 = layer.weight!.detach().clone();
        adapter.Merge();
        Assert.True(layer.weight!.allclose(w0.add(up.matmul(down).mul(Kept(0.7 * 0.5)), One), atol: 1e-6));
        Assert.True(layer.call(x).allclose(expected, rtol: 1e-5, atol: 1e-5));
        Assert.Throws<InvalidOperationException>(() => adapter.Scale = 1);
        adapter.Unmerge();
        Assert.True(layer.weight!.allclose(w0, atol: 1e-6));
        adapter.Remove();
        // Unmerging subtracts the update again, so the weight is back up to float32 rounding.
        Assert.True(layer.call(x).allclose(plain, rtol: 1e-5, atol: 1e-5));
        Assert.False(adapter.IsInstalled);
    }

    [Theory]
    [InlineData(3, 1, 1)]
    [InlineData(3, 2, 1)]
    [InlineData(3, 2, 0)]
    [InlineData(1, 1, 0)]
    public void ConvAdapterUsesTheLayersKernelStrideAndPadding(int kernel, int stride, int padding)
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        using var layer = nn.Conv2d(5, 7, kernel, stride: stride, padding: padding);
        using var adapter = new LoraAdapter(LoraComponent.UNet, "down_blocks.0.resnets.0.conv1", layer, rank: 2);
        Assert.Equal(kernel == 1 ? LoraLayerKind.Conv1x1 : LoraLayerKind.ConvKxK, adapter.Kind);
        Assert.Equal(new long[] { 2, 5, kernel, kernel }, adapter.DownWeight.shape);
        Assert.Equal(new long[] { 7, 2, 1, 1 }, adapter.UpWeight.shape);
        var x = randn(2, 5, 9, 8, generator: new Generator(4));
        var plain = layer.call(x);
        adapter.Install(layer);
        var (down, up) = Fill(adapter, 6);
        var delta = up.flatten(1).matmul(down.flatten(1)).reshape(7, 5, kernel, kernel);
        var expected = nn.functional.conv2d(x, layer.weight.add(delta, One), layer.bias, strides: [stride, stride], padding: [padding, padding]);
        var got = layer.call(x);
        Assert.Equal(expected.shape, got.shape);
        Assert.True(got.allclose(expected, rtol: 1e-4, atol: 1e-4), $"max diff {got.sub(expected).abs().max().item<float>()}");
        Assert.False(got.allclose(plain, atol: 1e-3));
        adapter.Merge();
        Assert.True(layer.call(x).allclose(expected, rtol: 1e-4, atol: 1e-4));
        adapter.Unmerge();
        adapter.Remove();
    }

    [Fact]
    public void DropoutActsOnlyWhileTraining()
    {
        using var scope = NewDisposeScope();
        manual_seed(13);
        using var layer = nn.Linear(64, 16);
        using var adapter = new LoraAdapter(LoraComponent.TextEncoder, "mlp.fc1", layer, rank: 4, dropout: 0.5);
        adapter.Install(layer);
        Fill(adapter, 7);
        var x = randn(8, 64, generator: new Generator(5));
        adapter.eval();
        var a = layer.call(x);
        Assert.True(layer.call(x).equal(a).all().item<bool>());
        adapter.train();
        manual_seed(1);
        var b = layer.call(x);
        Assert.False(b.allclose(a, atol: 1e-4));
        adapter.eval();
        Assert.True(layer.call(x).equal(a).all().item<bool>());
        adapter.Remove();
    }

    [Fact]
    public void BadArgumentsAndStatesAreRejected()
    {
        using var layer = nn.Linear(4, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoraAdapter(LoraComponent.UNet, "a", layer, rank: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoraAdapter(LoraComponent.UNet, "a", layer, rank: 2, alpha: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoraAdapter(LoraComponent.UNet, "a", layer, rank: 2, dropout: 1));
        using var norm = nn.LayerNorm(4);
        Assert.Throws<ArgumentException>(() => new LoraAdapter(LoraComponent.UNet, "norm", (nn.Module<Tensor, Tensor>)norm, rank: 2));
        using var grouped = nn.Conv2d(4, 4, 3, padding: 1, groups: 2);
        Assert.Throws<ArgumentException>(() => new LoraAdapter(LoraComponent.UNet, "g", grouped, rank: 2));
        using var adapter = new LoraAdapter(LoraComponent.UNet, "a", layer, rank: 2);
        Assert.Throws<InvalidOperationException>(() => adapter.Merge());
        using var other = nn.Linear(4, 5);
        var ex = Assert.Throws<ArgumentException>(() => adapter.Install(other));
        Assert.Contains("Linear(4 → 5)", ex.Message);
        adapter.Install(layer);
        Assert.Throws<InvalidOperationException>(() => adapter.Install(layer));
        Assert.Throws<ArgumentOutOfRangeException>(() => adapter.Scale = double.NaN);
        adapter.Remove();
    }
}
