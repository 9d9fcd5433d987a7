using AttnDreamBooth.Models.Vae;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Vae;

public sealed class DiagonalGaussianDistributionTests
{
    [Fact]
    public void LogVarIsClampedAndStdFollowsIt()
    {
        using var scope = torch.NewDisposeScope();
        var mean = torch.tensor(new float[] { 0.5f, -1f, 2f }).reshape(1, 1, 1, 3);
        var logvar = torch.tensor(new float[] { -100f, 0.3f, 100f }).reshape(1, 1, 1, 3);
        using var dist = new DiagonalGaussianDistribution(torch.cat([mean, logvar], dim: 1));

        Assert.Equal(new float[] { 0.5f, -1f, 2f }, dist.Mean.data<float>().ToArray());
        Assert.Equal(new float[] { -30f, 0.3f, 20f }, dist.LogVar.data<float>().ToArray());
        float[] std = dist.Std.data<float>().ToArray();
        Assert.Equal(MathF.Exp(-15f), std[0], 1e-6f * MathF.Exp(-15f));
        Assert.Equal(MathF.Exp(0.15f), std[1], 1e-6f);
        Assert.Equal(MathF.Exp(10f), std[2], 1e-6f * MathF.Exp(10f));
        Assert.Equal(MathF.Exp(0.3f), dist.Var.data<float>()[1], 1e-6f);
        Assert.Equal(Bytes(dist.Mean), Bytes(dist.Mode()));
    }

    [Fact]
    public void SampleIsMeanPlusStdTimesTheGeneratorsNoise()
    {
        using var scope = torch.NewDisposeScope();
        var moments = torch.randn([2, 8, 3, 5], generator: new torch.Generator(1));
        using var dist = new DiagonalGaussianDistribution(moments);

        var sample = dist.Sample(new torch.Generator(42));
        var noise = torch.randn([2, 4, 3, 5], generator: new torch.Generator(42));
        var expected = dist.Mean.add(dist.Std.mul(noise), One);

        Assert.Equal([2L, 4, 3, 5], sample.shape);
        Assert.True(sample.sub(expected).abs().max().item<float>() <= 1e-6f);
        Assert.Equal(Bytes(sample), Bytes(dist.Sample(new torch.Generator(42))));
        Assert.NotEqual(Bytes(sample), Bytes(dist.Sample(new torch.Generator(43))));
        Assert.Equal(Bytes(dist.SampleWithNoise(noise)), Bytes(sample));
    }

    private static byte[] Bytes(torch.Tensor t) => t.contiguous().bytes.ToArray();

    [Fact]
    public void InvalidShapesAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        Assert.Throws<ArgumentException>(() => new DiagonalGaussianDistribution(torch.zeros(1, 7, 2, 2)));
        Assert.Throws<ArgumentException>(() => new DiagonalGaussianDistribution(torch.zeros(4)));
        using var dist = new DiagonalGaussianDistribution(torch.zeros(1, 8, 2, 2));
        Assert.Throws<ArgumentException>(() => dist.SampleWithNoise(torch.zeros(1, 4, 2, 3)));
    }
}
