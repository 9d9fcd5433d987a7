using AttnDreamBooth.Schedulers;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>"&lt;case&gt;/scheduler-ddpm": tables, forward process, velocity, DDPM variance, single steps, timesteps and chain.</summary>
public sealed class SchedulerDdpmCheck : IParityCheck
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
