namespace AttnDreamBooth.Schedulers;

/// <summary>Inference timestep lists, reproducing the numpy arithmetic of diffusers 0.24 (float64, round half to even).</summary>
internal static class TimestepSpacings
{
    /// <summary>
    /// <see cref="DdpmDdim"/> for a sampler's <c>SetTimesteps</c>: checks the step count and that every timestep lies in
    /// the training schedule before anything is returned, so a rejected call leaves the sampler as it was.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The step count is outside [1, trainSteps], or the offset pushes a
    /// timestep out of the schedule.</exception>
    public static long[] DdpmDdimChecked(string scheduler, int trainSteps, int steps, TimestepSpacing spacing, int stepsOffset)
    {
        if (steps < 1 || steps > trainSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{scheduler}: the number of inference steps must lie in [1, {trainSteps}] (num_train_timesteps)");
        var timesteps = DdpmDdim(trainSteps, steps, spacing, stepsOffset);
        foreach (long t in timesteps)
        {
            if (t < 0 || t >= trainSteps)
                throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{scheduler}: with steps_offset {stepsOffset} and {spacing} spacing, {steps} steps give timestep {t}, outside [0, {trainSteps})");
        }
        return timesteps;
    }

    /// <summary>DDPM and DDIM: N timesteps out of T.</summary>
    public static long[] DdpmDdim(int trainSteps, int steps, TimestepSpacing spacing, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Linspace => Linspace(0, trainSteps - 1, steps).Reverse().Select(RoundEven).ToArray(),
        TimestepSpacing.Leading => Enumerable.Range(0, steps).Reverse().Select(i => (long)i * (trainSteps / steps) + stepsOffset).ToArray(),
        TimestepSpacing.Trailing => Arange(trainSteps, 0, -(double)trainSteps / steps).Select(v => RoundEven(v) - 1).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "unknown timestep spacing"),
    };

    /// <summary>DPM-Solver: N timesteps below <paramref name="lastTimestep"/> (T unless lambda_min_clipped cuts the range).</summary>
    public static long[] DpmSolver(int trainSteps, int lastTimestep, int steps, TimestepSpacing spacing, int stepsOffset) => spacing switch
    {
        // N + 1 points with the final 0 dropped: DPM-Solver ends its last step at the final sigma instead.
        TimestepSpacing.Linspace => Linspace(0, lastTimestep - 1, steps + 1).Reverse().Take(steps).Select(RoundEven).ToArray(),
        TimestepSpacing.Leading => Enumerable.Range(1, steps).Reverse().Select(i => (long)i * (lastTimestep / (steps + 1)) + stepsOffset).ToArray(),
        TimestepSpacing.Trailing => Arange(lastTimestep, 0, -(double)trainSteps / steps).Select(v => RoundEven(v) - 1).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "unknown timestep spacing"),
    };

    public static long RoundEven(double value) => (long)Math.Round(value, MidpointRounding.ToEven);

    // numpy.linspace(start, stop, num): i * step + start, the last point set to stop exactly.
    public static double[] Linspace(double start, double stop, int num)
    {
        var y = new double[num];
        if (num == 1)
        {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = i * step + start;
        y[num - 1] = stop;
        return y;
    }

    // numpy.arange(start, stop, step) for floats: ceil((stop - start) / step) values start + i * step.
    private static double[] Arange(double start, double stop, double step)
    {
        int count = Math.Max(0, (int)Math.Ceiling((stop - start) / step));
        return Enumerable.Range(0, count).Select(i => start + i * step).ToArray();
    }
}
