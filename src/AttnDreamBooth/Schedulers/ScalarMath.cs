using static TorchSharp.torch;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// float32 scalar functions evaluated by the same torch kernels the reference used on its 0-dim tensors, so the
/// samplers' coefficients round exactly like the reference (C#'s MathF may differ by an ulp from torch's vectorized
/// log/exp). Square roots, products and quotients are correctly rounded everywhere and stay plain C#.
/// </summary>
internal static class ScalarMath
{
    public static float Log(float x)
    {
        using var t = tensor(x);
        using var r = t.log();
        return r.item<float>();
    }

    public static float Exp(float x)
    {
        using var t = tensor(x);
        using var r = t.exp();
        return r.item<float>();
    }
}
