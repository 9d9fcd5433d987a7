namespace AttnDreamBooth.Schedulers;

/// <summary>
/// float32 scalar functions for the samplers' coefficients, rounding like the reference. The reference evaluates
/// them on 0-dim float32 tensors with torch's vectorized CPU kernels: its <c>exp</c> is SLEEF's 1-ulp
/// <c>expf</c> (AVX2 with FMA), which differs from the correctly rounded value now and then, and one ulp in
/// exp(-h) moves DPM-Solver++ samples by up to 2e-6; its <c>log</c> agreed with the correctly rounded value on
/// every coefficient of the fixtures. So: our own SLEEF-style exp, and a correctly rounded log (via double:
/// MathF.Log is off by an ulp for some of the fixtures' values).
/// </summary>
internal static class ScalarMath
{
    private const float InverseLn2 = 1.44269504088896340736f;
    private const float Ln2Upper = 0.693145751953125f;
    private const float Ln2Lower = 1.428606765330187045e-06f;

    public static float Log(float x) => (float)Math.Log(x);

    /// <summary>exp(x) by SLEEF's float algorithm: x = q ln2 + s (Cody-Waite, two-part ln2), a degree-6 polynomial for
    /// exp(s) with fused multiply-adds, then scaling by 2^q.</summary>
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
}
