namespace AttnDreamBooth.Schedulers;

/// <summary>
/// The training sigmas sqrt((1 - a_t) / a_t) of a schedule (float32, as torch computes them) and the numpy arithmetic
/// diffusers 0.24 does on them: interpolation at fractional timesteps, the inverse map sigma → timestep, Karras sigmas,
/// float timestep spacings. Shared by the sigma-based samplers.
/// </summary>
internal sealed class SigmaTable
{
    private readonly float[] _sigmas;
    private readonly float[] _logSigmas;

    public SigmaTable(NoiseSchedule schedule)
    {
        int count = schedule.NumTrainTimesteps;
        _sigmas = new float[count];
        _logSigmas = new float[count];
        for (int t = 0; t < count; t++)
        {
            float a = schedule.AlphaCumprodAt(t);
            _sigmas[t] = MathF.Sqrt((1f - a) / a);
            _logSigmas[t] = MathF.Log(_sigmas[t]);
        }
    }

    public int Count => _sigmas.Length;

    public float this[long t] => _sigmas[t];

    /// <summary>numpy.interp(t, arange(T), sigmas) in float64, clamped to the table's ends.</summary>
    public double Interp(double t)
    {
        if (!(t > 0)) return _sigmas[0];
        if (t >= _sigmas.Length - 1) return _sigmas[^1];
        int j = (int)Math.Floor(t);
        double slope = ((double)_sigmas[j + 1] - _sigmas[j]) / 1.0;
        return slope * (t - j) + _sigmas[j];
    }

    // The bracketing index of a log sigma: the last j with log_sigmas[j] <= logSigma (0 if none), at most T - 2.
    private int Low(double logSigma)
    {
        int low = 0;
        for (int j = 0; j < _logSigmas.Length; j++)
        {
            if (logSigma - _logSigmas[j] >= 0) low = j;
        }
        return Math.Min(low, _logSigmas.Length - 2);
    }

    /// <summary>The fractional timestep of a float64 sigma (diffusers <c>_sigma_to_t</c> with a float64 sigma).</summary>
    public double TimestepOf(double sigma)
    {
        double logSigma = Math.Log(Math.Max(sigma, 1e-10));
        int low = Low(logSigma);
        double lowLog = _logSigmas[low], highLog = _logSigmas[low + 1];
        double w = Math.Clamp((lowLog - logSigma) / (lowLog - highLog), 0.0, 1.0);
        return (1 - w) * low + w * (low + 1);
    }

    /// <summary>The same map with a float32 sigma and float32 logarithms and weights (diffusers' KDPM2 interpolated steps).</summary>
    public float TimestepOf(float sigma)
    {
        float logSigma = MathF.Log(MathF.Max(sigma, 1e-10f));
        int low = Low(logSigma);
        float lowLog = _logSigmas[low], highLog = _logSigmas[low + 1];
        float w = Math.Clamp((lowLog - logSigma) / (lowLog - highLog), 0f, 1f);
        // numpy promotes the float32 weights times the int64 indices to float64.
        return (float)((1f - w) * (double)low + w * (double)(low + 1));
    }

    /// <summary>Karras et al. (2022): <paramref name="count"/> sigmas evenly spaced in sigma^(1/7) from max to min (float64).</summary>
    public static double[] Karras(double sigmaMin, double sigmaMax, int count)
    {
        const double rho = 7.0;
        double minInv = Math.Pow(sigmaMin, 1 / rho), maxInv = Math.Pow(sigmaMax, 1 / rho);
        return TimestepSpacings.Linspace(0, 1, count).Select(r => Math.Pow(maxInv + r * (minInv - maxInv), rho)).ToArray();
    }

    /// <summary>
    /// The float timesteps of the k-diffusion samplers (Euler, Euler ancestral, LMS, Heun, KDPM2), descending, as float32
    /// values: linspace over [0, T-1]; leading multiples of T // N plus steps_offset; trailing round(T - i T/N) - 1.
    /// </summary>
    public static float[] KDiffusionTimesteps(int trainSteps, int steps, TimestepSpacing spacing, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Linspace => TimestepSpacings.Linspace(0, trainSteps - 1, steps).Reverse().Select(v => (float)v).ToArray(),
        TimestepSpacing.Leading => Enumerable.Range(0, steps).Reverse().Select(i => (float)((long)i * (trainSteps / steps)) + stepsOffset).ToArray(),
        TimestepSpacing.Trailing => Arange(trainSteps, 0, -(double)trainSteps / steps).Select(v => (float)Math.Round(v, MidpointRounding.ToEven) - 1f).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "unknown timestep spacing"),
    };

    // numpy.arange(start, stop, step) for floats: ceil((stop - start) / step) values start + i * step.
    private static double[] Arange(double start, double stop, double step)
    {
        int count = Math.Max(0, (int)Math.Ceiling((stop - start) / step));
        return Enumerable.Range(0, count).Select(i => start + i * step).ToArray();
    }
}
