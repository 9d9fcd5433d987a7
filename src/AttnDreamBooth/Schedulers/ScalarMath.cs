namespace AttnDreamBooth.Schedulers;

/// <summary>
/// float32 log and exp for the samplers' scalar coefficients, rounding exactly like the reference. The reference
/// evaluates them on 0-dim float32 tensors with torch's vectorized CPU kernels, which are SLEEF's 1-ulp
/// <c>logf</c>/<c>expf</c> (AVX2 with fused multiply-add). Those differ from the correctly rounded values now and
/// then, and one ulp in a DPM-Solver++ log-SNR step moves samples by up to 2e-6, so the two algorithms are
/// re-derived here (range reduction, double-float arithmetic, the same minimax polynomials). Their results equal
/// the reference on every coefficient of the fixtures' chains.
/// </summary>
internal static class ScalarMath
{
    private const float InverseLn2 = 1.44269504088896340736f;
    private const float Ln2Upper = 0.693145751953125f;
    private const float Ln2Lower = 1.428606765330187045e-06f;
    private const float Ln2Hi = 0.69314718246459960938f;
    private const float Ln2Lo = -1.904654323148236017e-09f;

    /// <summary>exp(x): x = q ln2 + s (two-part ln2), a degree-6 polynomial in s with fused multiply-adds, times 2^q.</summary>
    public static float Exp(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x < -104f) return 0f;
        if (x > 100f) return float.PositiveInfinity;
        int q = (int)MathF.Round(x * InverseLn2, MidpointRounding.ToEven);
        float s = MathF.FusedMultiplyAdd(q, -Ln2Upper, x);
        s = MathF.FusedMultiplyAdd(q, -Ln2Lower, s);
        float u = 0.000198527617612853646278381f;
        u = MathF.FusedMultiplyAdd(u, s, 0.00139304355252534151077271f);
        u = MathF.FusedMultiplyAdd(u, s, 0.00833336077630519866943359f);
        u = MathF.FusedMultiplyAdd(u, s, 0.0416664853692054748535156f);
        u = MathF.FusedMultiplyAdd(u, s, 0.166666671633720397949219f);
        u = MathF.FusedMultiplyAdd(u, s, 0.5f);
        u = 1f + MathF.FusedMultiplyAdd(s * s, u, s);
        return MathF.ScaleB(u, q);
    }

    /// <summary>log(x): x = 2^e m with m in [0.75, 1.5), log m = 2 atanh((m-1)/(m+1)) in double-float arithmetic.</summary>
    public static float Log(float x)
    {
        if (float.IsNaN(x) || x < 0) return float.NaN;
        if (x == 0) return float.NegativeInfinity;
        if (float.IsPositiveInfinity(x)) return x;
        if (!float.IsNormal(x)) return (float)Math.Log(x);
        int e = ((BitConverter.SingleToInt32Bits(x * (1f / 0.75f)) >> 23) & 0xff) - 0x7f;
        float m = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(x) - (e << 23));
        var s = Mul(new DoubleFloat(Ln2Hi, Ln2Lo), e);
        var r = Div(Add2(-1f, m), Add2(1f, m));
        float r2 = r.Hi * r.Hi;
        float t = 0.3027294874f;
        t = MathF.FusedMultiplyAdd(t, r2, 0.3996108174f);
        t = MathF.FusedMultiplyAdd(t, r2, 0.6666694880f);
        s = Add(s, new DoubleFloat(r.Hi * 2f, r.Lo * 2f));
        s = Add(s, r2 * r.Hi * t);
        return s.Hi + s.Lo;
    }

    private readonly record struct DoubleFloat(float Hi, float Lo);

    private static DoubleFloat Add2(float x, float y)
    {
        float s = x + y, v = s - x;
        return new DoubleFloat(s, (x - (s - v)) + (y - v));
    }

    // Assumes |x| >= |y| (true for the terms of Log).
    private static DoubleFloat Add(DoubleFloat x, DoubleFloat y)
    {
        float s = x.Hi + y.Hi;
        return new DoubleFloat(s, (((x.Hi - s) + y.Hi) + x.Lo) + y.Lo);
    }

    private static DoubleFloat Add(DoubleFloat x, float y)
    {
        float s = x.Hi + y;
        return new DoubleFloat(s, ((x.Hi - s) + y) + x.Lo);
    }

    private static DoubleFloat Mul(DoubleFloat x, float y)
    {
        float s = x.Hi * y;
        return new DoubleFloat(s, MathF.FusedMultiplyAdd(x.Lo, y, MathF.FusedMultiplyAdd(x.Hi, y, -s)));
    }

    private static DoubleFloat Div(DoubleFloat n, DoubleFloat d)
    {
        float t = 1f / d.Hi;
        float s = n.Hi * t;
        float u = MathF.FusedMultiplyAdd(t, n.Hi, -s);
        float v = MathF.FusedMultiplyAdd(-d.Lo, t, MathF.FusedMultiplyAdd(-d.Hi, t, 1f));
        return new DoubleFloat(s, MathF.FusedMultiplyAdd(s, v, MathF.FusedMultiplyAdd(n.Lo, t, u)));
    }
}
