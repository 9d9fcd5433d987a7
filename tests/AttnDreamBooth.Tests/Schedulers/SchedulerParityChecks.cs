using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Tests.Parity;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Schedulers;

/// <summary>Shared plumbing of the scheduler parity checks.</summary>
internal static class SchedulerParity
{
    public static string ConfigPath(FixtureCase fixture) => Path.Combine(fixture.PipelineFolder, "scheduler", "scheduler_config.json");

    public static SchedulerConfig Config(FixtureCase fixture) => SchedulerConfig.Load(ConfigPath(fixture));

    public static int Fact(ParityContext context, string key) => context.Manifest.Fact(key).GetInt32();

    public static long[] Longs(Tensor t) => t.to_type(ScalarType.Int64).data<long>().ToArray();

    /// <summary>Runs a chain: step i consumes model_outputs[i] at timesteps[i] and the previous prev_sample.</summary>
    public static void AssertTimestepsEqual(ParityContext context, string name, IReadOnlyList<long> actual)
    {
        context.AssertClose(name, torch.tensor(actual.ToArray()));
    }

    public static bool IsSdPipeline(FixtureCase fixture) => fixture.Kind == "sd_pipeline" && File.Exists(ConfigPath(fixture));
}

/// <summary>"&lt;case&gt;/scheduler-ddpm": tables, forward process, velocity, DDPM variance, single steps, timesteps and chain.</summary>
public sealed class DdpmSchedulerParityCheck : IParityCheck
{
    private static readonly string[] Names =
    [
        "scheduler.betas", "scheduler.alphas_cumprod",
        "scheduler.add_noise.original_samples", "scheduler.add_noise.noise", "scheduler.add_noise.timesteps", "scheduler.add_noise.noisy_samples",
        "scheduler.get_velocity.velocity",
        "scheduler.ddpm.variance",
        "scheduler.ddpm.single.timesteps", "scheduler.ddpm.single.samples", "scheduler.ddpm.single.model_outputs", "scheduler.ddpm.single.variance_noises",
        "scheduler.ddpm.single.prev_sample_means", "scheduler.ddpm.single.prev_samples", "scheduler.ddpm.single.pred_original_samples",
        "scheduler.ddpm.timesteps",
        "scheduler.ddpm.chain.initial_sample", "scheduler.ddpm.chain.model_outputs", "scheduler.ddpm.chain.variance_noises", "scheduler.ddpm.chain.timesteps",
        "scheduler.ddpm.chain.prev_samples", "scheduler.ddpm.chain.prev_sample_means", "scheduler.ddpm.chain.pred_original_samples",
    ];

    public string Name => "scheduler-ddpm";
    public IReadOnlyCollection<string> Components => ["scheduler"];
    public bool AppliesTo(FixtureCase fixture) => SchedulerParity.IsSdPipeline(fixture) && fixture.HasTensor("scheduler.betas");
    public IEnumerable<string> Claims(FixtureCase fixture) => Names;

    public void Run(ParityContext context)
    {
        using var scope = NewDisposeScope();
        var config = SchedulerParity.Config(context.Case);
        using var ddpm = DdpmScheduler.FromConfig(config);

        context.AssertClose("scheduler.betas", ddpm.Schedule.BetasTensor());
        context.AssertClose("scheduler.alphas_cumprod", ddpm.Schedule.AlphasCumprodTensor());

        var x0 = context.Tensor("scheduler.add_noise.original_samples");
        var noise = context.Tensor("scheduler.add_noise.noise");
        var t = context.Tensor("scheduler.add_noise.timesteps");
        context.AssertClose("scheduler.add_noise.noisy_samples", ddpm.AddNoise(x0, noise, t));
        context.AssertClose("scheduler.get_velocity.velocity", ddpm.GetVelocity(x0, noise, t));

        // A fresh scheduler: no SetTimesteps, so the previous timestep of t is t - 1.
        var variance = Enumerable.Range(0, ddpm.NumTrainTimesteps).Select(i => ddpm.Variance(i)).ToArray();
        context.AssertClose("scheduler.ddpm.variance", torch.tensor(variance));

        var singleT = SchedulerParity.Longs(context.Tensor("scheduler.ddpm.single.timesteps"));
        var samples = context.Tensor("scheduler.ddpm.single.samples");
        var outputs = context.Tensor("scheduler.ddpm.single.model_outputs");
        var noises = context.Tensor("scheduler.ddpm.single.variance_noises");
        var means = new List<Tensor>();
        var prevs = new List<Tensor>();
        var x0s = new List<Tensor>();
        for (int k = 0; k < singleT.Length; k++)
        {
            var mean = ddpm.StepMean(outputs[k], singleT[k], samples[k]);
            var noisy = ddpm.Step(outputs[k], singleT[k], samples[k], noises[k]);
            means.Add(mean.PrevSample);
            prevs.Add(noisy.PrevSample);
            x0s.Add(noisy.PredOriginalSample!);
        }
        context.AssertClose("scheduler.ddpm.single.prev_sample_means", stack(means));
        context.AssertClose("scheduler.ddpm.single.prev_samples", stack(prevs));
        context.AssertClose("scheduler.ddpm.single.pred_original_samples", stack(x0s));

        ddpm.SetTimesteps(SchedulerParity.Fact(context, "scheduler.ddpm.num_inference_steps"));
        SchedulerParity.AssertTimestepsEqual(context, "scheduler.ddpm.timesteps", ddpm.Timesteps);

        var chainT = SchedulerParity.Longs(context.Tensor("scheduler.ddpm.chain.timesteps"));
        if (!chainT.SequenceEqual(ddpm.Timesteps.Take(chainT.Length)))
            throw new XunitException($"{context.Case.Name}: the DDPM chain timesteps are not the first entries of the schedule");
        var chainOutputs = context.Tensor("scheduler.ddpm.chain.model_outputs");
        var chainNoises = context.Tensor("scheduler.ddpm.chain.variance_noises");
        var sample = context.Tensor("scheduler.ddpm.chain.initial_sample");
        means.Clear();
        prevs.Clear();
        x0s.Clear();
        for (int i = 0; i < chainT.Length; i++)
        {
            means.Add(ddpm.StepMean(chainOutputs[i], chainT[i], sample).PrevSample);
            var step = ddpm.Step(chainOutputs[i], chainT[i], sample, chainNoises[i]);
            prevs.Add(step.PrevSample);
            x0s.Add(step.PredOriginalSample!);
            sample = step.PrevSample;
        }
        context.AssertClose("scheduler.ddpm.chain.prev_samples", stack(prevs));
        context.AssertClose("scheduler.ddpm.chain.prev_sample_means", stack(means));
        context.AssertClose("scheduler.ddpm.chain.pred_original_samples", stack(x0s));
    }
}

/// <summary>"&lt;case&gt;/scheduler-ddim": DDIM timesteps and the eta = 0 chain.</summary>
public sealed class DdimSchedulerParityCheck : IParityCheck
{
    private static readonly string[] Names =
    [
        "scheduler.ddim.timesteps",
        "scheduler.ddim.chain.initial_sample", "scheduler.ddim.chain.model_outputs", "scheduler.ddim.chain.timesteps",
        "scheduler.ddim.chain.prev_samples", "scheduler.ddim.chain.pred_original_samples",
    ];

    public string Name => "scheduler-ddim";
    public IReadOnlyCollection<string> Components => ["scheduler"];
    public bool AppliesTo(FixtureCase fixture) => SchedulerParity.IsSdPipeline(fixture) && fixture.HasTensor("scheduler.ddim.timesteps");
    public IEnumerable<string> Claims(FixtureCase fixture) => Names;

    public void Run(ParityContext context)
    {
        using var scope = NewDisposeScope();
        using var ddim = DdimScheduler.FromConfig(SchedulerParity.Config(context.Case));
        double finalAlpha = context.Manifest.Fact("scheduler.ddim.final_alpha_cumprod").GetDouble();
        if ((float)finalAlpha != ddim.FinalAlphaCumprod)
            throw new XunitException($"{context.Case.Name}: final_alpha_cumprod {ddim.FinalAlphaCumprod:R}, expected {finalAlpha:R}");
        if (context.Manifest.Fact("scheduler.init_noise_sigma").GetDouble() != ddim.InitNoiseSigma)
            throw new XunitException($"{context.Case.Name}: init_noise_sigma differs");

        ddim.SetTimesteps(SchedulerParity.Fact(context, "scheduler.ddim.num_inference_steps"));
        SchedulerParity.AssertTimestepsEqual(context, "scheduler.ddim.timesteps", ddim.Timesteps);

        var chainT = SchedulerParity.Longs(context.Tensor("scheduler.ddim.chain.timesteps"));
        var outputs = context.Tensor("scheduler.ddim.chain.model_outputs");
        var sample = context.Tensor("scheduler.ddim.chain.initial_sample");
        var prevs = new List<Tensor>();
        var x0s = new List<Tensor>();
        for (int i = 0; i < chainT.Length; i++)
        {
            var step = ddim.Step(outputs[i], chainT[i], sample);
            prevs.Add(step.PrevSample);
            x0s.Add(step.PredOriginalSample!);
            sample = step.PrevSample;
        }
        context.AssertClose("scheduler.ddim.chain.prev_samples", stack(prevs));
        context.AssertClose("scheduler.ddim.chain.pred_original_samples", stack(x0s));
    }
}

/// <summary>"&lt;case&gt;/scheduler-dpmsolver": the DPM-Solver++ chains (plain, Karras, short, linspace).</summary>
public sealed class DpmSolverParityCheck : IParityCheck
{
    /// <summary>Chain prefix → the overrides the fixture README lists for it.</summary>
    internal static readonly (string Prefix, Dictionary<string, object?> Overrides)[] Chains =
    [
        ("scheduler.dpmsolver", new()),
        ("scheduler.dpmsolver_karras", new() { ["use_karras_sigmas"] = true }),
        ("scheduler.dpmsolver_short", new()),
        ("scheduler.dpmsolver_linspace", new() { ["timestep_spacing"] = "linspace" }),
    ];

    private static readonly string[] Suffixes =
        [".timesteps", ".sigmas", ".chain.initial_sample", ".chain.model_outputs", ".chain.timesteps", ".chain.prev_samples"];

    public string Name => "scheduler-dpmsolver";
    public IReadOnlyCollection<string> Components => ["scheduler"];
    public bool AppliesTo(FixtureCase fixture) => SchedulerParity.IsSdPipeline(fixture) && Chains.Any(c => fixture.HasTensor(c.Prefix + ".timesteps"));

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        Chains.Where(c => fixture.HasTensor(c.Prefix + ".timesteps"))
            .SelectMany(c => Suffixes.Select(s => c.Prefix + s).Append(c.Prefix + ".chain.x0_preds"))
            .Where(fixture.HasTensor);

    public void Run(ParityContext context)
    {
        var config = SchedulerParity.Config(context.Case);
        foreach (var (prefix, overrides) in Chains.Where(c => context.Has(c.Prefix + ".timesteps")))
        {
            using var scope = NewDisposeScope();
            using var dpm = DpmSolverMultistepScheduler.FromConfig(config.With(overrides));
            dpm.SetTimesteps(SchedulerParity.Fact(context, prefix + ".num_inference_steps"));
            SchedulerParity.AssertTimestepsEqual(context, prefix + ".timesteps", dpm.Timesteps);
            context.AssertClose(prefix + ".sigmas", dpm.SigmasTensor());

            var chainT = SchedulerParity.Longs(context.Tensor(prefix + ".chain.timesteps"));
            var outputs = context.Tensor(prefix + ".chain.model_outputs");
            var sample = context.Tensor(prefix + ".chain.initial_sample");
            var prevs = new List<Tensor>();
            var x0s = new List<Tensor>();
            for (int i = 0; i < chainT.Length; i++)
            {
                var step = dpm.Step(outputs[i], chainT[i], sample);
                prevs.Add(step.PrevSample);
                x0s.Add(step.PredOriginalSample!);
                sample = step.PrevSample;
            }
            context.AssertClose(prefix + ".chain.prev_samples", stack(prevs));
            if (context.Has(prefix + ".chain.x0_preds")) context.AssertClose(prefix + ".chain.x0_preds", stack(x0s));
        }
    }
}
