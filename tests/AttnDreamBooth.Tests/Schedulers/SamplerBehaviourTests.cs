using AttnDreamBooth.Schedulers;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Schedulers;

public sealed class SamplerBehaviourTests
{
    private static SchedulerConfig Sd1 => SchedulerConfig.Load(Path.Combine(TestPaths.TinySd1, "scheduler", "scheduler_config.json"));

    private static IDiffusionSampler[] Samplers(SchedulerConfig config) =>
        [DdpmScheduler.FromConfig(config), DdimScheduler.FromConfig(config), DpmSolverMultistepScheduler.FromConfig(config)];

    [Fact]
    public void StepBeforeSetTimestepsIsAnError()
    {
        using var x = randn(1, 4, 8, 8, generator: new Generator(1));
        using var ddim = DdimScheduler.FromConfig(Sd1);
        var e1 = Assert.Throws<SchedulerException>(() => ddim.Step(x, 981, x));
        Assert.Contains("SetTimesteps", e1.Message, StringComparison.Ordinal);
        using var dpm = DpmSolverMultistepScheduler.FromConfig(Sd1);
        Assert.Throws<SchedulerException>(() => dpm.Step(x, 981, x));
    }

    [Fact]
    public void TimestepsOutsideTheScheduleAreErrors()
    {
        using var x = randn(1, 4, 8, 8, generator: new Generator(2));
        using var ddim = DdimScheduler.FromConfig(Sd1);
        ddim.SetTimesteps(10);
        var error = Assert.Throws<SchedulerException>(() => ddim.Step(x, ddim.Timesteps[0] - 1, x));
        Assert.Equal(ddim.Timesteps[0] - 1, error.Timestep);
        Assert.Equal("timestep", error.ParamName);

        using var dpm = DpmSolverMultistepScheduler.FromConfig(Sd1);
        dpm.SetTimesteps(10);
        Assert.Throws<SchedulerException>(() => dpm.Step(x, 5000, x));
        // In the schedule, but not the timestep of step 0.
        Assert.Throws<SchedulerException>(() => dpm.Step(x, dpm.Timesteps[1], x));
        foreach (long t in dpm.Timesteps) dpm.Step(x, t, x).PrevSample.Dispose();
        Assert.Throws<SchedulerException>(() => dpm.Step(x, dpm.Timesteps[^1], x));

        using var ddpm = DdpmScheduler.FromConfig(Sd1);
        Assert.Throws<ArgumentOutOfRangeException>(() => ddpm.Step(x, ddpm.NumTrainTimesteps, x, x));
    }

    [Fact]
    public void StepCountsOutsideOneToNumTrainTimestepsAreRejected()
    {
        foreach (var sampler in Samplers(Sd1))
        {
            using (sampler)
            {
                int t = sampler.Config.NumTrainTimesteps;
                var tooMany = Assert.Throws<ArgumentOutOfRangeException>(() => sampler.SetTimesteps(t + 1));
                Assert.Equal("steps", tooMany.ParamName);
                Assert.Throws<ArgumentOutOfRangeException>(() => sampler.SetTimesteps(0));
            }
        }
    }

    [Fact]
    public void DdpmStepsTheTrainingScheduleUntilSetTimesteps()
    {
        using var ddpm = DdpmScheduler.FromConfig(Sd1);
        int count = ddpm.NumTrainTimesteps;
        Assert.Equal(Enumerable.Range(0, count).Reverse().Select(i => (long)i), ddpm.Timesteps);
        Assert.Equal(499, ddpm.PreviousTimestep(500));
        ddpm.SetTimesteps(20);
        Assert.Equal(500 - count / 20, ddpm.PreviousTimestep(500));
        Assert.Equal(20, ddpm.Timesteps.Count);
        ddpm.ResetToTrainingSchedule();
        Assert.Equal(499, ddpm.PreviousTimestep(500));
    }

    [Fact]
    public void SeededGeneratorsMakeStochasticStepsReproducible()
    {
        using var scope = NewDisposeScope();
        using var ddpm = DdpmScheduler.FromConfig(Sd1);
        var sample = randn(2, 4, 8, 8, generator: new Generator(3));
        var output = randn(2, 4, 8, 8, generator: new Generator(4));
        var a = ddpm.Step(output, 600, sample, new Generator(7)).PrevSample;
        var b = ddpm.Step(output, 600, sample, new Generator(7)).PrevSample;
        var c = ddpm.Step(output, 600, sample, new Generator(8)).PrevSample;
        Assert.True(a.eq(b).all().item<bool>());
        Assert.False(a.eq(c).all().item<bool>());
        // The generator supplies exactly the noise the explicit-noise overload takes.
        var noise = randn(2, 4, 8, 8, generator: new Generator(7));
        Assert.True(a.eq(ddpm.Step(output, 600, sample, noise).PrevSample).all().item<bool>());
        // t = 0 adds no noise.
        Assert.True(ddpm.Step(output, 0, sample, new Generator(7)).PrevSample.eq(ddpm.StepMean(output, 0, sample).PrevSample).all().item<bool>());

        using var ddim = DdimScheduler.FromConfig(Sd1);
        ddim.SetTimesteps(10);
        long t0 = ddim.Timesteps[0];
        var d1 = ddim.Step(output, t0, sample, eta: 1.0, generator: new Generator(9)).PrevSample;
        var d2 = ddim.Step(output, t0, sample, eta: 1.0, generator: new Generator(9)).PrevSample;
        var d0 = ddim.Step(output, t0, sample).PrevSample;
        Assert.True(d1.eq(d2).all().item<bool>());
        Assert.False(d1.eq(d0).all().item<bool>());
    }

    [Fact]
    public void TrainingSideTargetsAndTimesteps()
    {
        using var scope = NewDisposeScope();
        var config = Sd1;
        var x0 = randn(3, 4, 8, 8, generator: new Generator(10));
        var noise = randn(3, 4, 8, 8, generator: new Generator(11));
        using var ddpm = DdpmScheduler.FromConfig(config);
        var t = ddpm.SampleTimesteps(3, new Generator(12));
        Assert.Equal(ScalarType.Int64, t.dtype);
        Assert.True(t.eq(ddpm.SampleTimesteps(3, new Generator(12))).all().item<bool>());
        var many = ddpm.SampleTimesteps(4096, new Generator(13));
        Assert.True(many.min().item<long>() >= 0 && many.max().item<long>() < ddpm.NumTrainTimesteps);
        Assert.True(many.max().item<long>() > ddpm.NumTrainTimesteps * 9 / 10 && many.min().item<long>() < ddpm.NumTrainTimesteps / 10);

        Assert.True(ddpm.GetTrainingTarget(x0, noise, t).eq(noise).all().item<bool>());
        using var v = DdpmScheduler.FromConfig(config.With(new Dictionary<string, object?> { ["prediction_type"] = "v_prediction" }));
        Assert.True(v.GetTrainingTarget(x0, noise, t).eq(v.GetVelocity(x0, noise, t)).all().item<bool>());
        using var s = DdpmScheduler.FromConfig(config.With(new Dictionary<string, object?> { ["prediction_type"] = "sample" }));
        Assert.True(s.GetTrainingTarget(x0, noise, t).eq(x0).all().item<bool>());

        // x_t = sqrt(a) x0 + sqrt(1 - a) noise and v = sqrt(a) noise - sqrt(1 - a) x0 give back x0 = sqrt(a) x_t - sqrt(1 - a) v.
        var xt = ddpm.AddNoise(x0, noise, t);
        var a = ddpm.Schedule.AlphasCumprodTensor().index_select(0, t).reshape(3, 1, 1, 1);
        var back = a.sqrt().mul(xt).sub(a.neg().add(Kept(1), One).sqrt().mul(ddpm.GetVelocity(x0, noise, t)));
        Assert.True(back.allclose(x0, rtol: 0, atol: 1e-5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ddpm.AddNoise(x0, noise, tensor(new long[] { 0, 1, 1000 })));
        Assert.Throws<ArgumentException>(() => ddpm.AddNoise(x0, noise[..2], t));
    }

    public static TheoryData<string, int, string, string, bool> SolverVariants()
    {
        var data = new TheoryData<string, int, string, string, bool>();
        foreach (string algorithm in new[] { "dpmsolver++", "dpmsolver" })
        foreach (int order in new[] { 1, 2, 3 })
        foreach (string solverType in new[] { "midpoint", "heun" })
        foreach (string prediction in new[] { "epsilon", "v_prediction", "sample" })
        foreach (bool karras in new[] { false, true })
        {
            if (order == 1 && solverType == "heun") continue;
            data.Add(algorithm, order, solverType, prediction, karras);
        }
        return data;
    }

    /// <summary>
    /// With a model that knows the single data point x0*, the diffusion ODE solution is x = alpha x0* + sigma eps0 for the
    /// initial noise eps0, and every DPM-Solver variant integrates it exactly (the data and noise predictions are constant).
    /// </summary>
    [Theory]
    [MemberData(nameof(SolverVariants))]
    public void DpmSolverVariantsIntegrateASinglePointExactly(string algorithm, int order, string solverType, string prediction, bool karras)
    {
        using var scope = NewDisposeScope();
        var config = Sd1.With(new Dictionary<string, object?>
        {
            ["algorithm_type"] = algorithm, ["solver_order"] = order, ["solver_type"] = solverType,
            ["prediction_type"] = prediction, ["use_karras_sigmas"] = karras,
        });
        using var dpm = DpmSolverMultistepScheduler.FromConfig(config);
        dpm.SetTimesteps(12);
        var target = randn(1, 4, 4, 4, generator: new Generator(20)).clamp(Kept(-1), Kept(1));
        var eps0 = randn(1, 4, 4, 4, generator: new Generator(21));
        var (a0, s0) = AlphaSigma(dpm.Sigmas[0]);
        var x = target.mul(Kept(a0)).add(eps0.mul(Kept(s0)), One);
        for (int i = 0; i < dpm.Timesteps.Count; i++)
        {
            var (alpha, sigma) = AlphaSigma(dpm.Sigmas[i]);
            var eps = x.sub(target.mul(Kept(alpha))).div(Kept(sigma));
            var output = prediction switch
            {
                "epsilon" => eps,
                "v_prediction" => eps.mul(Kept(alpha)).sub(target.mul(Kept(sigma))),
                _ => target,
            };
            x = dpm.Step(output, dpm.Timesteps[i], x).PrevSample;
        }
        var (aN, sN) = AlphaSigma(dpm.Sigmas[^1]);
        var expected = target.mul(Kept(aN)).add(eps0.mul(Kept(sN)), One);
        double error = x.sub(expected).abs().max().item<float>();
        Assert.True(error < 1e-4, $"ended {error:g3} away from the exact solution");
    }

    public static TheoryData<string, int, string, string> ConvergenceVariants()
    {
        var data = new TheoryData<string, int, string, string>();
        foreach (object[] row in SolverVariants())
        {
            if ((bool)row[4]) data.Add((string)row[0], (int)row[1], (string)row[2], (string)row[3]);
        }
        return data;
    }

    /// <summary>
    /// Gaussian data N(mu, s^2): the exact denoiser is mu + alpha s^2 / (alpha^2 s^2 + sigma^2) (x - alpha mu), and the
    /// probability-flow ODE keeps z = (x - alpha mu) / sqrt(alpha^2 s^2 + sigma^2) constant. The predictions change along
    /// the path, so the higher-order terms matter: doubling the steps must shrink the error by about 2^order (Karras
    /// sigmas, where the step sizes are even enough for the asymptotic rate to show at 25 and 50 steps).
    /// </summary>
    [Theory]
    [MemberData(nameof(ConvergenceVariants))]
    public void DpmSolverVariantsConvergeAtTheirOrder(string algorithm, int order, string solverType, string prediction)
    {
        double coarse = GaussianOdeError(algorithm, order, solverType, prediction, karras: true, steps: 25);
        double fine = GaussianOdeError(algorithm, order, solverType, prediction, karras: true, steps: 50);
        double[] minimumRatio = [0, 1.7, 3.2, 2.5];
        double[] maximumError = [0, 0.06, 5e-3, 1e-3];
        Assert.True(fine < maximumError[order], $"error {fine:g3} with 50 steps");
        Assert.True(coarse / fine > minimumRatio[order], $"doubling the steps shrank the error only from {coarse:g3} to {fine:g3}");
    }

    private static double GaussianOdeError(string algorithm, int order, string solverType, string prediction, bool karras, int steps)
    {
        using var scope = NewDisposeScope();
        const float mu = 0.3f, s2 = 0.25f;
        var config = Sd1.With(new Dictionary<string, object?>
        {
            ["algorithm_type"] = algorithm, ["solver_order"] = order, ["solver_type"] = solverType,
            ["prediction_type"] = prediction, ["use_karras_sigmas"] = karras,
        });
        using var dpm = DpmSolverMultistepScheduler.FromConfig(config);
        dpm.SetTimesteps(steps);
        var z = randn(1, 4, 8, 8, generator: new Generator(22));
        float Spread(float alpha, float sigma) => MathF.Sqrt(alpha * alpha * s2 + sigma * sigma);
        var (a0, g0) = AlphaSigma(dpm.Sigmas[0]);
        var x = z.mul(Kept(Spread(a0, g0))).add(Kept(a0 * mu), One);
        for (int i = 0; i < dpm.Timesteps.Count; i++)
        {
            var (alpha, sigma) = AlphaSigma(dpm.Sigmas[i]);
            var x0 = x.sub(Kept(alpha * mu)).mul(Kept(alpha * s2 / (alpha * alpha * s2 + sigma * sigma))).add(Kept(mu), One);
            var eps = x.sub(x0.mul(Kept(alpha))).div(Kept(sigma));
            var output = prediction switch
            {
                "epsilon" => eps,
                "v_prediction" => eps.mul(Kept(alpha)).sub(x0.mul(Kept(sigma))),
                _ => x0,
            };
            x = dpm.Step(output, dpm.Timesteps[i], x).PrevSample;
        }
        var (aN, gN) = AlphaSigma(dpm.Sigmas[^1]);
        var expected = z.mul(Kept(Spread(aN, gN))).add(Kept(aN * mu), One);
        return x.sub(expected).abs().max().item<float>();
    }

    [Fact]
    public void DdimWithAnExactModelLandsOnTheDataPoint()
    {
        using var scope = NewDisposeScope();
        using var ddim = DdimScheduler.FromConfig(Sd1);
        ddim.SetTimesteps(25);
        var target = randn(1, 4, 4, 4, generator: new Generator(30)).clamp(Kept(-1), Kept(1));
        var eps0 = randn(1, 4, 4, 4, generator: new Generator(31));
        float a0 = ddim.Schedule.AlphasCumprod[(int)ddim.Timesteps[0]];
        var x = target.mul(Kept(MathF.Sqrt(a0))).add(eps0.mul(Kept(MathF.Sqrt(1 - a0))), One);
        foreach (long t in ddim.Timesteps) x = ddim.Step(eps0, t, x).PrevSample;
        var expected = target.mul(Kept(MathF.Sqrt(ddim.FinalAlphaCumprod))).add(eps0.mul(Kept(MathF.Sqrt(1 - ddim.FinalAlphaCumprod))), One);
        Assert.True(x.allclose(expected, rtol: 0, atol: 1e-4));
    }

    [Fact]
    public void ResetReplaysTheSameDpmSolverChain()
    {
        using var scope = NewDisposeScope();
        using var dpm = DpmSolverMultistepScheduler.FromConfig(Sd1);
        dpm.SetTimesteps(8);
        var start = randn(1, 4, 8, 8, generator: new Generator(40));
        var outputs = randn([8, 1, 4, 8, 8], generator: new Generator(41));
        Tensor Run()
        {
            var x = start;
            for (int i = 0; i < dpm.Timesteps.Count; i++) x = dpm.Step(outputs[i], dpm.Timesteps[i], x).PrevSample;
            return x;
        }
        var first = Run();
        Assert.Equal(8, dpm.StepIndex);
        dpm.Reset();
        Assert.True(first.eq(Run()).all().item<bool>());
        using var other = DpmSolverMultistepScheduler.FromConfig(Sd1);
        other.SetTimesteps(8);
        var x2 = start;
        for (int i = 0; i < 8; i++) x2 = other.Step(outputs[i], other.Timesteps[i], x2).PrevSample;
        Assert.True(first.eq(x2).all().item<bool>());
    }

    [Fact]
    public void DpmSolverHistorySurvivesPerStepDisposeScopes()
    {
        using var outer = NewDisposeScope();
        var start = randn(1, 4, 8, 8, generator: new Generator(42));
        var outputs = randn([6, 1, 4, 8, 8], generator: new Generator(43));
        using var plain = DpmSolverMultistepScheduler.FromConfig(Sd1);
        plain.SetTimesteps(6);
        var expected = start;
        for (int i = 0; i < 6; i++) expected = plain.Step(outputs[i], plain.Timesteps[i], expected).PrevSample;

        // The way a generation loop frees each step's temporaries: the sampler's own history must not go with them.
        using var scoped = DpmSolverMultistepScheduler.FromConfig(Sd1);
        scoped.SetTimesteps(6);
        var x = start;
        for (int i = 0; i < 6; i++)
        {
            using var stepScope = NewDisposeScope();
            var output = outputs[i].mul(Kept(1f));
            x = scoped.Step(output, scoped.Timesteps[i], x).PrevSample.MoveToOuterDisposeScope();
        }
        Assert.True(x.eq(expected).all().item<bool>());
    }

    [Fact]
    public void DdpmVarianceTypesScaleTheNoiseAsDiffusersDoes()
    {
        using var scope = NewDisposeScope();
        var sample = randn(1, 4, 4, 4, generator: new Generator(50));
        var eps = randn(1, 4, 4, 4, generator: new Generator(51));
        var noise = ones(1, 4, 4, 4);
        const long t = 500;
        using var small = DdpmScheduler.FromConfig(Sd1);
        float posterior = small.Variance(t);
        float beta = 1 - small.Schedule.AlphasCumprod[(int)t] / small.Schedule.AlphasCumprod[(int)t - 1];
        var mean = small.StepMean(eps, t, sample).PrevSample;
        float Scale(DdpmScheduler s, Tensor output) => s.Step(output, t, sample, noise).PrevSample.sub(mean).mean().item<float>();

        Assert.Equal(MathF.Sqrt(posterior), Scale(small, eps), 5);
        using var smallLog = DdpmScheduler.FromConfig(Sd1.With(new Dictionary<string, object?> { ["variance_type"] = "fixed_small_log" }));
        Assert.Equal(MathF.Sqrt(posterior), Scale(smallLog, eps), 5);
        using var large = DdpmScheduler.FromConfig(Sd1.With(new Dictionary<string, object?> { ["variance_type"] = "fixed_large" }));
        Assert.Equal(MathF.Sqrt(beta), Scale(large, eps), 5);
        using var learned = DdpmScheduler.FromConfig(Sd1.With(new Dictionary<string, object?> { ["variance_type"] = "learned_range" }));
        Assert.Equal(MathF.Sqrt(beta), Scale(learned, cat([eps, ones_like(eps)], 1)), 5);
        Assert.Equal(MathF.Sqrt(posterior), Scale(learned, cat([eps, ones_like(eps).neg()], 1)), 5);
        Assert.Throws<ArgumentException>(() => learned.Step(eps, t, sample, noise));
    }

    [Fact]
    public void ClippingAndThresholdingBoundThePredictedSample()
    {
        using var scope = NewDisposeScope();
        var sample = randn(2, 4, 8, 8, generator: new Generator(60)).mul(Kept(3));
        var eps = randn(2, 4, 8, 8, generator: new Generator(61));
        var clipping = SchedulerConfig.Parse("""{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}""");
        using var ddim = DdimScheduler.FromConfig(clipping);
        Assert.True(ddim.Config.ClipSample);
        ddim.SetTimesteps(10);
        var x0 = ddim.Step(eps, ddim.Timesteps[^1], sample).PredOriginalSample!;
        Assert.True(x0.abs().max().item<float>() <= 1f);
        Assert.True(x0.abs().eq(Kept(1f)).any().item<bool>());

        using var thresholded = DdimScheduler.FromConfig(clipping.With(new Dictionary<string, object?> { ["thresholding"] = true, ["sample_max_value"] = 2.0 }));
        thresholded.SetTimesteps(10);
        var y0 = thresholded.Step(eps, thresholded.Timesteps[^1], sample).PredOriginalSample!;
        Assert.True(y0.abs().max().item<float>() <= 1f + 1e-6f);
    }

    [Theory]
    [InlineData("leading")]
    [InlineData("linspace")]
    [InlineData("trailing")]
    public void SpacingsGiveDistinctDescendingTimestepsInRange(string spacing)
    {
        var config = Sd1.With(new Dictionary<string, object?> { ["timestep_spacing"] = spacing });
        foreach (int steps in new[] { 1, 7, 25, 50, 500 })
        {
            foreach (var sampler in Samplers(config))
            {
                using (sampler)
                {
                    sampler.SetTimesteps(steps);
                    var t = sampler.Timesteps;
                    Assert.Equal(steps, t.Count);
                    Assert.All(t, v => Assert.InRange(v, 0, sampler.Config.NumTrainTimesteps - 1));
                    Assert.True(t.Zip(t.Skip(1)).All(p => p.First > p.Second), $"{sampler.GetType().Name} {spacing} {steps}: not strictly descending");
                    if (spacing == "trailing") Assert.Equal(sampler.Config.NumTrainTimesteps - 1, t[0]);
                }
            }
        }
        if (spacing == "leading")
        {
            // T // (N + 1) = 1 with steps_offset 1 reaches timestep T: refused instead of indexing past the table.
            using var dpm = DpmSolverMultistepScheduler.FromConfig(config);
            Assert.Throws<ArgumentOutOfRangeException>(() => dpm.SetTimesteps(dpm.Schedule.NumTrainTimesteps - 1));
        }
    }

    [Fact]
    public void LambdaMinClippedDropsTheNoisiestTimesteps()
    {
        var cosine = SchedulerConfig.Parse("""{"beta_schedule": "squaredcos_cap_v2"}""");
        using var unclipped = DpmSolverMultistepScheduler.FromConfig(cosine.With(new Dictionary<string, object?> { ["lambda_min_clipped"] = double.NegativeInfinity }));
        using var clipped = DpmSolverMultistepScheduler.FromConfig(cosine.With(new Dictionary<string, object?> { ["lambda_min_clipped"] = -5.1 }));
        unclipped.SetTimesteps(20);
        clipped.SetTimesteps(20);
        Assert.Equal(unclipped.Schedule.NumTrainTimesteps - 1, unclipped.Timesteps[0]);
        Assert.True(clipped.Timesteps[0] < unclipped.Timesteps[0]);
        double LambdaOf(long t)
        {
            double a = clipped.Schedule.AlphasCumprod[(int)t];
            return 0.5 * Math.Log(a / (1 - a));
        }
        Assert.True(LambdaOf(clipped.Timesteps[0]) >= -5.1 - 1e-3);
        Assert.True(LambdaOf(unclipped.Timesteps[0]) < -5.1);
    }

    [Fact]
    public void ZeroTerminalSnrRescalingEndsAtZeroSignal()
    {
        var config = Sd1.With(new Dictionary<string, object?> { ["rescale_betas_zero_snr"] = true, ["prediction_type"] = "v_prediction" });
        using var ddim = DdimScheduler.FromConfig(config);
        using var plain = DdimScheduler.FromConfig(Sd1);
        Assert.True(ddim.Schedule.AlphasCumprod[^1] < 1e-6f);
        Assert.Equal(plain.Schedule.AlphasCumprod[0], ddim.Schedule.AlphasCumprod[0], 6);
        // DDPM in diffusers 0.24 has no such option: the key is carried, not applied.
        using var ddpm = DdpmScheduler.FromConfig(config);
        Assert.Equal(plain.Schedule.AlphasCumprod[^1], ddpm.Schedule.AlphasCumprod[^1]);
        // Training noise follows the schedule the model samples with, whichever class its config names.
        using var training = DdpmScheduler.ForTraining(config);
        Assert.Equal(ddim.Schedule.AlphasCumprod, training.Schedule.AlphasCumprod);
        Assert.True(ddpm.Config.RescaleBetasZeroSnr && training.Config.RescaleBetasZeroSnr);
        using var plainTraining = DdpmScheduler.ForTraining(Sd1);
        Assert.Equal(plain.Schedule.AlphasCumprod, plainTraining.Schedule.AlphasCumprod);
    }

    private static (float Alpha, float Sigma) AlphaSigma(float sigma)
    {
        float alpha = 1f / MathF.Sqrt(sigma * sigma + 1f);
        return (alpha, sigma * alpha);
    }
}
