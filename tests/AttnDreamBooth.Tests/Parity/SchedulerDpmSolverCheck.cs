using AttnDreamBooth.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>"&lt;case&gt;/scheduler-dpmsolver": the DPM-Solver++ chains (plain, Karras, short, linspace).</summary>
public sealed class SchedulerDpmSolverCheck : IParityCheck
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
