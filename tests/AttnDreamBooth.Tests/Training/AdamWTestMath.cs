using AttnDreamBooth.Training;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>The AdamW formula evaluated independently in float64 with libtorch, and the error measures the tests use.</summary>
internal static class AdamWTestMath
{
    /// <summary>Unit roundoff of float32 (half an ulp at 1).</summary>
    public const double Float32Roundoff = 1.0 / (1 << 24);

    /// <summary>PyTorch's AdamW formula in float64 (each operation a separate libtorch float64 op), every stored value
    /// rounded to float32 once. Returns (param, exp_avg, exp_avg_sq) and, in float64, the magnitudes the float32 paths'
    /// rounding is proportional to.</summary>
    public static Float64Step Formula(Tensor p, Tensor g, Tensor m, Tensor v, AdamWStepScalars s)
    {
        using var scope = NewDisposeScope();
        var P = p.to(float64);
        var G = g.to(float64);
        var M = m.to(float64);
        var V = v.to(float64);
        var m1 = M.mul(Kept(s.Beta1)).add(G.mul(Kept(s.OneMinusBeta1)), One);
        var v1 = V.mul(Kept(s.Beta2)).add(G.mul(G).mul(Kept(s.OneMinusBeta2)), One);
        var denom = v1.sqrt().div(Kept(s.BiasCorrection2Sqrt)).add(Kept(s.Epsilon), One);
        var update = m1.mul(Kept(s.StepSize)).div(denom);
        var p1 = P.mul(Kept(s.Decay)).sub(update);
        // What each float32 operation of a whole-tensor path rounds: the terms it adds, not the (possibly cancelled) sum.
        var mScale = M.abs().mul(Kept(s.Beta1)).add(G.abs().mul(Kept(s.OneMinusBeta1)), One);
        var vScale = V.mul(Kept(s.Beta2)).add(G.mul(G).mul(Kept(s.OneMinusBeta2)), One);
        var pScale = P.abs().mul(Kept(s.Decay)).add(update.abs(), One).add(mScale.mul(Kept(s.StepSize)).div(denom), One);
        return new Float64Step(
            p1.to(float32).MoveToOuterDisposeScope(), m1.to(float32).MoveToOuterDisposeScope(), v1.to(float32).MoveToOuterDisposeScope(),
            pScale.MoveToOuterDisposeScope(), mScale.MoveToOuterDisposeScope(), vScale.MoveToOuterDisposeScope());
    }

    /// <summary>Largest distance in units in the last place between two float32 tensors of one shape.</summary>
    public static long MaxUlps(Tensor a, Tensor b)
    {
        Assert.Equal(a.shape, b.shape);
        var x = a.contiguous().data<float>().ToArray();
        var y = b.contiguous().data<float>().ToArray();
        long worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            Assert.False(float.IsNaN(x[i]) || float.IsNaN(y[i]), $"NaN at {i}");
            worst = Math.Max(worst, Math.Abs(Ordered(x[i]) - Ordered(y[i])));
        }
        return worst;
    }

    /// <summary>Largest |a − b| / (u · scale) over the elements (u = float32 unit roundoff): how many roundings of the
    /// terms involved the difference amounts to.</summary>
    public static double MaxScaledError(Tensor a, Tensor b, Tensor scale)
    {
        using var scope = NewDisposeScope();
        var diff = a.to(float64).sub(b.to(float64)).abs();
        // A zero scale (all terms zero) must give an exact result; 1e-300 keeps 0/0 out of the maximum.
        var ratio = diff.div(scale.clamp_min(Kept(1e-300)).mul(Kept(Float32Roundoff)));
        return ratio.max().item<double>();
    }

    /// <summary>Float bits mapped to a monotonic integer line (so that adjacent floats differ by 1, across zero too).</summary>
    private static long Ordered(float f)
    {
        int bits = BitConverter.SingleToInt32Bits(f);
        return bits >= 0 ? bits : (long)int.MinValue - bits;
    }
}

/// <summary>The float64 formula's results (float32) and the float64 term magnitudes per stored value.</summary>
internal sealed record Float64Step(Tensor Param, Tensor ExpAvg, Tensor ExpAvgSq, Tensor ParamScale, Tensor ExpAvgScale, Tensor ExpAvgSqScale);
