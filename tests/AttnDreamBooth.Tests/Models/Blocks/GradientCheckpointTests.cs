using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Blocks;

public sealed class GradientCheckpointTests
{
    private static nn.Module<Tensor, Tensor> MakeBlock(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16), nn.SiLU(), nn.Linear(16, 6));
    }

    [Fact]
    public void GradientsEqualTheUncheckpointedPath()
    {
        var block = MakeBlock(7);
        var generator = new Generator(3);
        var x = randn([4, 6], generator: generator);
        var context = randn([4, 6], generator: generator);

        Tensor Fn(Tensor?[] i) => block.call(i[0]!.add(i[1]!.mul(Kept(0.5)), One));

        var plainX = x.clone().requires_grad_(true);
        var plainC = context.clone().requires_grad_(true);
        Fn([plainX, plainC]).pow(Kept(2)).sum().backward();
        var plainGrads = block.parameters().Select(p => p.grad!.clone()).ToArray();
        foreach (var p in block.parameters()) p.grad = null;

        var ckX = x.clone().requires_grad_(true);
        var ckC = context.clone().requires_grad_(true);
        var outputs = GradientCheckpoint.Run(i => [Fn(i)], [ckX, ckC], block.parameters());
        outputs[0].pow(Kept(2)).sum().backward();

        Assert.True(plainX.grad!.allclose(ckX.grad!, rtol: 0, atol: 0), "input gradient");
        Assert.True(plainC.grad!.allclose(ckC.grad!, rtol: 0, atol: 0), "context gradient");
        var ckGrads = block.parameters().Select(p => p.grad!).ToArray();
        for (int i = 0; i < plainGrads.Length; i++) Assert.True(plainGrads[i].allclose(ckGrads[i], rtol: 0, atol: 0), $"parameter {i}");
    }

    [Fact]
    public void ParametersGetGradientsWhenNoInputRequiresOne()
    {
        var block = MakeBlock(11);
        var x = randn([2, 6], generator: new Generator(5));
        var outputs = GradientCheckpoint.Run(i => [block.call(i[0]!)], [x], block.parameters());
        outputs[0].sum().backward();
        Assert.All(block.parameters(), p => Assert.NotNull(p.grad));
        Assert.Null(x.grad);
    }

    [Fact]
    public void FrozenParametersGetNoGradient()
    {
        var block = MakeBlock(13);
        var parameters = block.parameters().ToArray();
        foreach (var p in parameters.Take(2)) p.requires_grad = false;
        var x = randn([2, 6], generator: new Generator(9)).requires_grad_(true);
        GradientCheckpoint.Run(i => [block.call(i[0]!)], [x], parameters)[0].sum().backward();
        Assert.All(parameters.Take(2), p => Assert.Null(p.grad));
        Assert.All(parameters.Skip(2), p => Assert.NotNull(p.grad));
        Assert.NotNull(x.grad);
    }

    [Fact]
    public void WithoutGradModeItIsAPlainCall()
    {
        var block = MakeBlock(17);
        var x = randn([2, 6], generator: new Generator(1));
        using var _ = no_grad();
        var outputs = GradientCheckpoint.Run(i => [block.call(i[0]!)], [x], block.parameters());
        Assert.False(outputs[0].requires_grad);
        Assert.True(outputs[0].allclose(block.call(x), rtol: 0, atol: 0));
    }
}
