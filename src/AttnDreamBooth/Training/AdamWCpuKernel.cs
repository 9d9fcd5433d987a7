using System.Numerics;

namespace AttnDreamBooth.Training;

/// <summary>
/// The one-pass AdamW update over raw float32 storage: each element of parameter, gradient and both moments is read
/// once and the three results written once (28 bytes of memory traffic per element instead of ~90 for the
/// whole-tensor sequence). Every element is computed in double precision from its float32 inputs and rounded to float32
/// once per stored value, so the result is the float64 evaluation of PyTorch's formula rounded to float32:
/// <code>
/// m' = β1·m + (1−β1)·g          v' = β2·v + (1−β2)·(g·g)
/// p' = p·(1 − lr·wd) − (step·m') / (√v' / √(1−β2^t) + ε),   step = lr / (1−β1^t)
/// </code>
/// The vector body (<see cref="Vector{T}"/>: widen to double, compute, narrow) and the scalar tail perform the same IEEE
/// operations in the same order without fused multiply-adds, so results do not depend on an element's position, the
/// vector width or how the range is split between threads.
/// </summary>
internal static unsafe class AdamWCpuKernel
{
    /// <summary>Updates elements [0, <paramref name="count"/>) of the four arrays in place.</summary>
    public static void Update(float* p, float* g, float* m, float* v, long count, in AdamWStepScalars s) =>
        Update(p, g, m, v, count, new Constants(s));

    /// <summary>The step's constants as the kernel uses them, computed once (the 8-bit kernel calls
    /// <see cref="Update(float*, float*, float*, float*, long, in Constants)"/> once per 256-element block).</summary>
    internal readonly struct Constants(in AdamWStepScalars s)
    {
        public readonly double Beta1 = s.Beta1, Beta2 = s.Beta2, OneMinusBeta1 = s.OneMinusBeta1, OneMinusBeta2 = s.OneMinusBeta2;
        public readonly double Decay = s.Decay, Correction2 = s.BiasCorrection2Sqrt, Epsilon = s.Epsilon, StepSize = s.StepSize;
    }

    /// <summary>Updates elements [0, <paramref name="count"/>) of the four arrays in place.</summary>
    public static void Update(float* p, float* g, float* m, float* v, long count, in Constants c)
    {
        double beta1 = c.Beta1, beta2 = c.Beta2, oneMinusBeta1 = c.OneMinusBeta1, oneMinusBeta2 = c.OneMinusBeta2;
        double decay = c.Decay, correction2 = c.Correction2, epsilon = c.Epsilon, stepSize = c.StepSize;
        long i = 0;
        int width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && count >= width)
        {
            var vBeta1 = new Vector<double>(beta1);
            var vBeta2 = new Vector<double>(beta2);
            var vOneMinusBeta1 = new Vector<double>(oneMinusBeta1);
            var vOneMinusBeta2 = new Vector<double>(oneMinusBeta2);
            var vDecay = new Vector<double>(decay);
            var vCorrection2 = new Vector<double>(correction2);
            var vEpsilon = new Vector<double>(epsilon);
            var vStepSize = new Vector<double>(stepSize);
            for (long last = count - width; i <= last; i += width)
            {
                Vector.Widen(Vector.Load(p + i), out var p0, out var p1);
                Vector.Widen(Vector.Load(g + i), out var g0, out var g1);
                Vector.Widen(Vector.Load(m + i), out var m0, out var m1);
                Vector.Widen(Vector.Load(v + i), out var v0, out var v1);

                m0 = vBeta1 * m0 + vOneMinusBeta1 * g0;
                m1 = vBeta1 * m1 + vOneMinusBeta1 * g1;
                v0 = vBeta2 * v0 + vOneMinusBeta2 * (g0 * g0);
                v1 = vBeta2 * v1 + vOneMinusBeta2 * (g1 * g1);
                var d0 = Vector.SquareRoot(v0) / vCorrection2 + vEpsilon;
                var d1 = Vector.SquareRoot(v1) / vCorrection2 + vEpsilon;
                p0 = p0 * vDecay - vStepSize * m0 / d0;
                p1 = p1 * vDecay - vStepSize * m1 / d1;

                Vector.Store(Vector.Narrow(p0, p1), p + i);
                Vector.Store(Vector.Narrow(m0, m1), m + i);
                Vector.Store(Vector.Narrow(v0, v1), v + i);
            }
        }
        for (; i < count; i++)
        {
            double pd = p[i], gd = g[i], md = m[i], vd = v[i];
            md = beta1 * md + oneMinusBeta1 * gd;
            vd = beta2 * vd + oneMinusBeta2 * (gd * gd);
            double denom = Math.Sqrt(vd) / correction2 + epsilon;
            pd = pd * decay - stepSize * md / denom;
            p[i] = (float)pd;
            m[i] = (float)md;
            v[i] = (float)vd;
        }
    }
}
