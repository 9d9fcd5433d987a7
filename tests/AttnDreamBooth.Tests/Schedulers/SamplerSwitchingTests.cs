using AttnDreamBooth.IO;
using AttnDreamBooth.Schedulers;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Schedulers;

/// <summary>The new samplers outside the fixture chains: choosing by name, from_config switching, state errors,
/// refusals, determinism and the seeded generator of Euler ancestral.</summary>
public sealed class SamplerSwitchingTests
{
    private static SchedulerConfig Sd15 => SchedulerConfig.Load(Path.Combine(FixtureRoots.RealSize, "stable-diffusion-v1-5", "scheduler", "scheduler_config.json"));

    private static SchedulerConfig Sd21 => SchedulerConfig.Load(Path.Combine(FixtureRoots.RealSize, "stable-diffusion-2-1", "scheduler", "scheduler_config.json"));

    public static TheoryData<string> NewSamplerNames() =>
        ["euler", "euler-a", "unipc", "pndm", "lms", "heun", "kdpm2", "dpm-singlestep", "deis"];

    [Theory]
    [InlineData("euler", typeof(EulerDiscreteScheduler))]
    [InlineData("Euler_A", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("euler-ancestral", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("plms", typeof(PndmScheduler))]
    [InlineData("UniPCMultistepScheduler", typeof(UniPCMultistepScheduler))]
    [InlineData("dpm++", typeof(DpmSolverMultistepScheduler))]
    [InlineData("ddim", typeof(DdimScheduler))]
    [InlineData("dpm-singlestep", typeof(DpmSolverSinglestepScheduler))]
    [InlineData("DEIS", typeof(DeisMultistepScheduler))]
    [InlineData("lms", typeof(LmsDiscreteScheduler))]
    [InlineData("heun", typeof(HeunDiscreteScheduler))]
    [InlineData("kdpm2", typeof(KDpm2DiscreteScheduler))]
    public void NamesAndClassNamesChooseTheSampler(string name, Type expected)
    {
        using var sampler = DiffusionSamplers.Create(name, Sd15);
        Assert.IsType(expected, sampler);
        Assert.False(sampler.Config.UseKarrasSigmas);
    }

    [Fact]
    public void KarrasSuffixSetsKarrasSigmasAndIsRefusedWhereTheClassHasNone()
    {
        using var euler = DiffusionSamplers.Create("euler-karras", Sd15);
        Assert.True(euler.Config.UseKarrasSigmas);
        var error = Assert.Throws<SchedulerException>(() => DiffusionSamplers.Create("pndm-karras", Sd15));
        Assert.Contains("PNDMScheduler has no Karras sigmas", error.Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<SchedulerException>(() => DiffusionSamplers.Create("dpm3000", Sd15));
        Assert.Equal("dpm3000", unknown.SamplerName);
        Assert.Contains("euler-a", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromConfigBuildsTheNamedClassAndSwitchingKeepsTheSharedKeys()
    {
        // SD 1.5's file names PNDM; every other class built from it takes its leading spacing and offset.
        using var pndm = DiffusionSamplers.FromConfig(Sd15);
        Assert.IsType<PndmScheduler>(pndm);
        using var euler = EulerDiscreteScheduler.FromConfig(Sd15);
        Assert.Equal(TimestepSpacing.Leading, euler.Config.TimestepSpacing);
        Assert.Equal(1, euler.Config.StepsOffset);
        Assert.Contains("skip_prk_steps", euler.Config.CarriedKeys.Keys);
        // SD 2.1's file has no timestep_spacing: each class keeps its own default.
        using var unipc = UniPCMultistepScheduler.FromConfig(Sd21);
        Assert.Equal(TimestepSpacing.Linspace, unipc.Config.TimestepSpacing);
        Assert.Equal(PredictionType.VPrediction, unipc.PredictionType);
        Assert.Equal(DpmSolverType.Bh2, unipc.Config.SolverType);
        using var pndm21 = PndmScheduler.FromConfig(Sd21);
        Assert.Equal(TimestepSpacing.Leading, pndm21.Config.TimestepSpacing);
        // Switching back and forth resolves the same file again.
        var back = euler.Config.For(SchedulerClass.Pndm);
        Assert.True(back.SkipPrkSteps);
        Assert.Equal(SchedulerClass.Pndm, back.Class);
    }

    [Fact]
    public void SiblingSpellingsOfSolverTypesMapPerClass()
    {
        var bh1 = Sd15.With(new Dictionary<string, object?> { ["solver_type"] = "bh1", ["algorithm_type"] = "deis" });
        Assert.Equal(DpmSolverType.Bh1, bh1.For(SchedulerClass.UniPCMultistep).SolverType);
        Assert.Equal(DpmSolverType.Logrho, bh1.For(SchedulerClass.DeisMultistep).SolverType);
        Assert.Equal(DpmSolverType.Midpoint, bh1.For(SchedulerClass.DpmSolverMultistep).SolverType);
        Assert.Equal(DpmSolverAlgorithm.DpmSolverPlusPlus, bh1.For(SchedulerClass.DpmSolverSinglestep).AlgorithmType);
        Assert.Equal(DpmSolverAlgorithm.Deis, bh1.For(SchedulerClass.DeisMultistep).AlgorithmType);
        Assert.Equal(DpmSolverType.Bh2, Sd15.With(new Dictionary<string, object?> { ["solver_type"] = "heun" }).For(SchedulerClass.UniPCMultistep).SolverType);
    }

    [Fact]
    public void UnsupportedOptionsAreRefusedWithTheKey()
    {
        var sample = Sd15.With(new Dictionary<string, object?> { ["prediction_type"] = "sample" });
        Assert.Equal("prediction_type", Assert.Throws<ModelConfigException>(() => EulerAncestralDiscreteScheduler.FromConfig(sample)).Key);
        Assert.Equal("prediction_type", Assert.Throws<ModelConfigException>(() => KDpm2DiscreteScheduler.FromConfig(sample)).Key);
        Assert.Equal("prediction_type", Assert.Throws<ModelConfigException>(() => PndmScheduler.FromConfig(sample)).Key);
        var logLinear = Sd15.With(new Dictionary<string, object?> { ["interpolation_type"] = "log_linear" });
        Assert.Equal("interpolation_type", Assert.Throws<ModelConfigException>(() => EulerDiscreteScheduler.FromConfig(logLinear)).Key);
        var sde = Sd15.With(new Dictionary<string, object?> { ["algorithm_type"] = "sde-dpmsolver++" });
        Assert.Equal("algorithm_type", Assert.Throws<ModelConfigException>(() => DeisMultistepScheduler.FromConfig(sde)).Key);
        Assert.Equal("algorithm_type", Assert.Throws<ModelConfigException>(() => DpmSolverSinglestepScheduler.FromConfig(sde)).Key);
        var solverP = Assert.Throws<ModelConfigException>(() => SchedulerConfig.Parse("""{"_class_name": "UniPCMultistepScheduler", "solver_p": {"a": 1}}"""));
        Assert.Equal("solver_p", solverP.Key);
        var order = Assert.Throws<ModelConfigException>(() => SchedulerConfig.Parse("""{"_class_name": "UniPCMultistepScheduler", "solver_order": 4}"""));
        Assert.Equal("solver_order", order.Key);
    }

    [Theory]
    [MemberData(nameof(NewSamplerNames))]
    public void StateErrorsNameTheProblem(string name)
    {
        using var x = randn([1, 4, 3, 5], generator: new Generator(3));
        using var sampler = DiffusionSamplers.Create(name, Sd15);
        var early = Assert.Throws<SchedulerException>(() => sampler.Step(x, 1, x));
        Assert.Contains("SetTimesteps", early.Message, StringComparison.Ordinal);
        sampler.SetTimesteps(6);
        Assert.Throws<SchedulerException>(() => sampler.Step(x, sampler.Timesteps[^1] + 7, x));
        Assert.Throws<ArgumentException>(() => sampler.Step(randn([1, 4, 3, 4]), sampler.Timesteps[0], x));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.SetTimesteps(0));
        for (int i = 0; i < sampler.Timesteps.Count; i++)
        {
            // ScaleModelInput may return its argument (identity scaling): not disposed here.
            var input = sampler.ScaleModelInput(x, sampler.Timesteps[i]);
            sampler.Step(input.mul(Kept(0.5)), sampler.Timesteps[i], x, new Generator(4)).PrevSample.Dispose();
        }
        Assert.Throws<SchedulerException>(() => sampler.Step(x, sampler.Timesteps[^1], x));
    }

    [Theory]
    [MemberData(nameof(NewSamplerNames))]
    public void ResetReplaysTheSameChainAndResultsAreFinite(string name)
    {
        foreach (var config in new[] { Sd15, Sd21 })
        {
            using var sampler = DiffusionSamplers.Create(name, config);
            sampler.SetTimesteps(7);
            var first = Run(sampler, seed: 11);
            sampler.Reset();
            var second = Run(sampler, seed: 11);
            Assert.True(first.isfinite().all().item<bool>(), $"{name}: non-finite samples");
            Assert.True(first.eq(second).all().item<bool>(), $"{name}: Reset did not replay the chain");
        }
    }

    [Theory]
    [InlineData("unipc")]
    [InlineData("deis")]
    [InlineData("dpm-singlestep")]
    [InlineData("euler")]
    [InlineData("lms")]
    [InlineData("heun")]
    [InlineData("kdpm2")]
    public void KarrasChainsRunToTheEndWithoutNaN(string name)
    {
        using var sampler = DiffusionSamplers.Create(name + "-karras", Sd15);
        sampler.SetTimesteps(9);
        using var result = Run(sampler, seed: 5);
        Assert.True(result.isfinite().all().item<bool>());
    }

    [Fact]
    public void VpKarrasSigmasEqualDpmSolverMultisteps()
    {
        var karras = Sd15.With(new Dictionary<string, object?> { ["use_karras_sigmas"] = true });
        using var dpm = DpmSolverMultistepScheduler.FromConfig(karras);
        using var unipc = UniPCMultistepScheduler.FromConfig(karras);
        dpm.SetTimesteps(20);
        unipc.SetTimesteps(20);
        Assert.Equal(dpm.Sigmas, unipc.Sigmas);
        Assert.Equal(dpm.Timesteps, unipc.Timesteps);
    }

    [Theory]
    [InlineData(12, 2, true, new[] { 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2 })]
    [InlineData(7, 2, true, new[] { 1, 2, 1, 2, 1, 2, 1 })]
    [InlineData(9, 3, true, new[] { 1, 2, 3, 1, 2, 3, 1, 2, 1 })]
    [InlineData(7, 3, true, new[] { 1, 2, 3, 1, 2, 3, 1 })]
    [InlineData(8, 3, true, new[] { 1, 2, 3, 1, 2, 3, 1, 2 })]
    [InlineData(6, 3, false, new[] { 1, 2, 3, 1, 2, 3 })]
    public void SinglestepOrderLists(int steps, int order, bool lowerOrderFinal, int[] expected) =>
        Assert.Equal(expected, DpmSolverSinglestepScheduler.OrderList(steps, order, lowerOrderFinal));

    [Fact]
    public void EulerAncestralDrawsItsNoiseFromTheGeneratorOnTheCpu()
    {
        using var sampler = EulerAncestralDiscreteScheduler.FromConfig(Sd15);
        sampler.SetTimesteps(5);
        using var x = randn([2, 4, 3, 5], generator: new Generator(9));
        var byGenerator = new List<Tensor>();
        using (var g = new Generator(1234))
        {
            var sample = x;
            foreach (long t in sampler.Timesteps) byGenerator.Add(sample = sampler.Step(sampler.ScaleModelInput(sample, t), t, sample, g).PrevSample);
        }
        sampler.Reset();
        using (var g = new Generator(1234))
        {
            var sample = x;
            for (int i = 0; i < sampler.Timesteps.Count; i++)
            {
                // The i-th randn(shape, generator) of the same seed, injected.
                var noise = randn(x.shape, generator: g);
                sample = sampler.Step(sampler.ScaleModelInput(sample, sampler.Timesteps[i]), sampler.ModelTimesteps[i], sample, noise).PrevSample;
                Assert.True(sample.eq(byGenerator[i]).all().item<bool>(), $"step {i} differs");
            }
        }
    }

    private static Tensor Run(IDiffusionSampler sampler, int seed)
    {
        using var scope = NewDisposeScope();
        var sample = randn([1, 4, 3, 5], generator: new Generator((ulong)seed)).mul(Kept(sampler.InitNoiseSigma));
        var pattern = randn([1, 4, 3, 5], generator: new Generator((ulong)seed + 1));
        using var g = new Generator(77);
        for (int i = 0; i < sampler.Timesteps.Count; i++)
        {
            long t = sampler.Timesteps[i];
            var output = sampler.ScaleModelInput(sample, t).mul(Kept(0.875)).add(pattern.mul(Kept(0.25 - 0.5 * sampler.ModelTimesteps[i] / 1000)), One);
            sample = sampler.Step(output, t, sample, g).PrevSample;
        }
        return sample.MoveToOuterDisposeScope();
    }
}
