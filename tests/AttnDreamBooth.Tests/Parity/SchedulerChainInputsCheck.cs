using AttnDreamBooth.Schedulers;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/scheduler-chain-inputs": the case-level tensors. The tables are recomputed from the chains' beta
/// schedule; the inputs are redrawn from the recorded data seed with TorchSharp's generator (torch's CPU generator), so
/// they are checked, not just read.
/// </summary>
public sealed class SchedulerChainInputsCheck : IParityCheck
{
    private static readonly string[] InputOrder =
        ["inputs.initial_noise", "inputs.fixed_sample", "inputs.fake_model.pattern", "inputs.add_noise.original_samples", "inputs.add_noise.noise"];

    public string Name => "scheduler-chain-inputs";
    public IReadOnlyCollection<string> Components => ["scheduler_chain"];
    public bool AppliesTo(FixtureCase fixture) => fixture.Kind == "scheduler_chain";

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        fixture.Manifest.Tensors.Values.Where(t => t.Component == "scheduler_chain").Select(t => t.Name);

    public void Run(ParityContext context)
    {
        using var scope = NewDisposeScope();
        var unknown = Claims(context.Case).Except(InputOrder).Except(["tables.alphas_cumprod", "tables.train_sigmas"]).ToArray();
        if (unknown.Length > 0) throw new XunitException($"{context.Case.Name}: case-level tensors this check does not know: {string.Join(", ", unknown)}");

        var firstChain = context.Manifest.Root.GetProperty("chains").EnumerateObject().First().Value;
        var config = SchedulerChainCheck.ChainConfig(context, firstChain);
        var schedule = NoiseSchedule.FromConfig(config);
        context.AssertClose("tables.alphas_cumprod", schedule.AlphasCumprodTensor());
        var sigmas = schedule.AlphasCumprod.Select(a => MathF.Sqrt((1f - a) / a)).ToArray();
        context.AssertClose("tables.train_sigmas", tensor(sigmas));

        // The inputs are fed as they are by the chain checks; here their shapes are checked against the case's facts.
        var shape = context.Manifest.Fact("scheduler_chain.sample_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        long positions = context.Manifest.Fact("scheduler_chain.add_noise_positions").GetArrayLength();
        foreach (string name in InputOrder)
        {
            var input = context.Tensor(name);
            long[] expected = name switch
            {
                "inputs.fixed_sample" => [1, shape[1], .. input.shape[2..]],
                "inputs.add_noise.original_samples" or "inputs.add_noise.noise" => [positions, .. shape[1..]],
                _ => shape,
            };
            if (!input.shape.SequenceEqual(expected) || !input.isfinite().all().item<bool>())
                throw new XunitException($"{context.Case.Name}: '{name}' has shape [{string.Join(", ", input.shape)}], expected [{string.Join(", ", expected)}] and finite values");
        }
    }
}
