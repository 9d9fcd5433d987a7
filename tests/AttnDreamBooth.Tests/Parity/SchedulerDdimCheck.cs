using AttnDreamBooth.Schedulers;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>"&lt;case&gt;/scheduler-ddim": DDIM timesteps and the eta = 0 chain.</summary>
public sealed class SchedulerDdimCheck : IParityCheck
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
