using System.Text.Json;
using AttnDreamBooth.Schedulers;
using TorchSharp;
using Xunit.Sdk;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// Parity with the <c>scheduler_chain</c> cases: every chain of one diffusers class is rebuilt from its source
/// <c>scheduler_config.json</c> plus overrides (diffusers <c>from_config</c>), its effective configuration compared,
/// and its schedule, probe scalings, full denoising loop on the fake model and <c>add_noise</c> compared tensor by
/// tensor. One check per class ("&lt;case&gt;/scheduler-chain-euler" …), claiming exactly that class's tensors.
/// </summary>
public abstract class SchedulerChainCheck : IParityCheck
{
    private readonly string _className;

    private protected SchedulerChainCheck(string shortName, string className)
    {
        Name = "scheduler-chain-" + shortName;
        _className = className;
    }

    public string Name { get; }

    private string Component => "scheduler:" + _className;

    public IReadOnlyCollection<string> Components => [Component];

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "scheduler_chain" && fixture.Manifest.Tensors.Values.Any(t => t.Component == Component);

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        fixture.Manifest.Tensors.Values.Where(t => t.Component == Component).Select(t => t.Name);

    public void Run(ParityContext context)
    {
        var chains = context.Manifest.Root.GetProperty("chains");
        int ran = 0;
        foreach (var chain in chains.EnumerateObject())
        {
            if (chain.Value.GetProperty("class").GetString() != _className) continue;
            RunChain(context, chain.Name, chain.Value);
            ran++;
        }
        if (ran == 0) throw new XunitException($"{context.Case.Name}: no chain of {_className}");
    }

    /// <summary>The source file of a chain with its overrides applied, as <c>from_config(file, **overrides)</c>.</summary>
    internal static SchedulerConfig ChainConfig(ParityContext context, JsonElement chain)
    {
        string source = chain.GetProperty("source").GetString()!;
        var file = context.Manifest.Root.GetProperty("scheduler_configs").GetProperty(source);
        var config = SchedulerConfig.Parse(file.GetRawText(), $"{context.Case.Name}:scheduler_configs.{source}");
        var overrides = new Dictionary<string, object?>();
        foreach (var o in chain.GetProperty("overrides").EnumerateObject())
        {
            overrides[o.Name] = o.Value.ValueKind switch
            {
                JsonValueKind.True or JsonValueKind.False => o.Value.GetBoolean(),
                JsonValueKind.Number => o.Value.TryGetInt32(out int i) ? i : o.Value.GetDouble(),
                JsonValueKind.String => o.Value.GetString(),
                _ => throw new XunitException($"unexpected override {o.Name}"),
            };
        }
        return overrides.Count == 0 ? config : config.With(overrides);
    }

    private void RunChain(ParityContext context, string id, JsonElement chain)
    {
        var config = ChainConfig(context, chain);
        // The stored configuration is exactly the source file plus the overrides, and both resolve the same way.
        var stored = SchedulerConfig.Parse(chain.GetProperty("config").GetRawText(), $"{id}.config");
        var target = SchedulerConfig.ClassOf(_className);
        AssertEffectiveConfig(id, chain.GetProperty("effective_config"), config.For(target).ConstructorArguments);
        AssertEffectiveConfig(id, chain.GetProperty("effective_config"), stored.For(target).ConstructorArguments);

        var steps = chain.GetProperty("num_inference_steps").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var fake = context.Manifest.Root.GetProperty("fake_model");
        float a = (float)fake.GetProperty("a").GetDouble();
        double b0 = fake.GetProperty("b0").GetDouble(), b1 = fake.GetProperty("b1").GetDouble();
        var pattern = context.Tensor("inputs.fake_model.pattern");
        var initialNoise = context.Tensor("inputs.initial_noise");
        var probe = context.Tensor("inputs.fixed_sample");

        for (int n = 0; n < steps.Length; n++)
        {
            using var scope = NewDisposeScope();
            string prefix = $"{id}.n{steps[n]}";
            using var sampler = DiffusionSamplers.Create(target, config);
            sampler.SetTimesteps(steps[n]);
            AssertSchedule(context, prefix, sampler);
            int count = chain.GetProperty($"n{steps[n]}").GetProperty("steps").GetInt32();
            if (sampler.Timesteps.Count != count) throw new XunitException($"{prefix}: {sampler.Timesteps.Count} steps, expected {count}");
            var referenceTimesteps = context.Tensor(prefix + ".timesteps").to_type(ScalarType.Float64).data<double>().ToArray();
            var noises = context.Has(prefix + ".chain.noises") ? context.Tensor(prefix + ".chain.noises") : null;
            if (noises is not null) AssertGeneratorDrawsTheNoise(context, chain.GetProperty($"n{steps[n]}"), prefix, noises);

            var sample = initialNoise.mul(tensor((float)sampler.InitNoiseSigma));
            var inputs = new List<Tensor>();
            var outputs = new List<Tensor>();
            var probes = new List<Tensor>();
            var prevs = new List<Tensor>();
            var x0s = new List<Tensor>();
            for (int i = 0; i < count; i++)
            {
                long t = sampler.Timesteps[i];
                probes.Add(sampler.ScaleModelInput(probe, t));
                var modelInput = sampler.ScaleModelInput(sample, t);
                // The fake model sees the reference's timestep (as the fixture README prescribes).
                float coefficient = (float)(b0 + b1 * referenceTimesteps[i] / 1000.0);
                var modelOutput = modelInput.mul(Kept(a)).add(pattern.mul(Kept(coefficient)), One);
                var step = noises is not null
                    ? ((EulerAncestralDiscreteScheduler)sampler).Step(modelOutput, sampler.ModelTimesteps[i], sample, noises[i])
                    : sampler.Step(modelOutput, t, sample);
                inputs.Add(modelInput);
                outputs.Add(modelOutput);
                prevs.Add(step.PrevSample);
                if (step.PredOriginalSample is { } x0) x0s.Add(x0);
                sample = step.PrevSample;
            }
            context.AssertClose(prefix + ".chain.prev_samples", stack(prevs));
            CompareIfPresent(context, prefix + ".chain.model_inputs", inputs);
            CompareIfPresent(context, prefix + ".chain.model_outputs", outputs);
            CompareIfPresent(context, prefix + ".chain.pred_original_samples", x0s);
            CompareIfPresent(context, prefix + ".scale_model_input.outputs", probes);
        }
        AssertAddNoise(context, id, chain, target, config, steps[0]);
    }

    private static void CompareIfPresent(ParityContext context, string name, List<Tensor> values)
    {
        if (!context.Has(name)) return;
        if (values.Count == 0) throw new XunitException($"{context.Case.Name}: the sampler returned nothing for '{name}'");
        context.AssertClose(name, stack(values));
    }

    private static void AssertSchedule(ParityContext context, string prefix, IDiffusionSampler sampler)
    {
        switch (sampler)
        {
            case KDiffusionSampler k:
                context.AssertClose(prefix + ".timesteps", k.ModelTimestepsTensor());
                context.AssertClose(prefix + ".sigmas", k.SigmasTensor());
                if (k is KDpm2DiscreteScheduler kdpm2) context.AssertClose(prefix + ".sigmas_interpol", tensor(kdpm2.SigmasInterpol.Skip(1).ToArray()));
                break;
            case ExponentialIntegratorSampler e:
                context.AssertClose(prefix + ".timesteps", e.TimestepsTensor());
                context.AssertClose(prefix + ".sigmas", e.SigmasTensor());
                break;
            default:
                context.AssertClose(prefix + ".timesteps", sampler.TimestepsTensor());
                break;
        }
        context.AssertClose(prefix + ".init_noise_sigma", tensor((float)sampler.InitNoiseSigma));
    }

    // The stored draws are the i-th torch.randn(shape, generator=g) of a CPU generator seeded with the recorded seed:
    // TorchSharp's generator must give the same numbers, so a seeded Euler-ancestral run equals the reference's.
    private static void AssertGeneratorDrawsTheNoise(ParityContext context, JsonElement n, string prefix, Tensor noises)
    {
        ulong seed = n.GetProperty("noise_generator_seed").GetUInt64();
        using var generator = new Generator(seed);
        long[] shape = noises.shape[1..];
        for (long i = 0; i < noises.shape[0]; i++)
        {
            using var drawn = randn(shape, dtype: ScalarType.Float32, generator: generator);
            if (!drawn.eq(noises[i]).all().item<bool>())
                throw new XunitException($"{context.Case.Name}: draw {i} of a generator seeded {seed} differs from '{prefix}.chain.noises'[{i}]");
        }
    }

    private static void AssertAddNoise(ParityContext context, string id, JsonElement chain, SchedulerClass target, SchedulerConfig config, int steps)
    {
        using var scope = NewDisposeScope();
        using var sampler = DiffusionSamplers.Create(target, config);
        sampler.SetTimesteps(steps);
        var positions = chain.GetProperty("add_noise").GetProperty("schedule_positions").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var x0 = context.Tensor("inputs.add_noise.original_samples");
        var noise = context.Tensor("inputs.add_noise.noise");
        Tensor noisy;
        switch (sampler)
        {
            case KDiffusionSampler k:
            {
                var t = positions.Select(p => k.ModelTimesteps[p]).ToArray();
                context.AssertClose(id + ".add_noise.timesteps", tensor(t.Select(v => (float)v).ToArray()));
                context.AssertClose(id + ".add_noise.sigma_indices", tensor(t.Select(v => (long)k.SigmaIndexOf(v)).ToArray()));
                noisy = k.AddNoise(x0, noise, t);
                break;
            }
            case ExponentialIntegratorSampler e:
            {
                var t = positions.Select(p => e.Timesteps[p]).ToArray();
                context.AssertClose(id + ".add_noise.timesteps", tensor(t));
                context.AssertClose(id + ".add_noise.sigma_indices", tensor(t.Select(v => (long)e.SigmaIndexOf(v)).ToArray()));
                noisy = e.AddNoise(x0, noise, t);
                break;
            }
            case PndmScheduler p:
            {
                var t = tensor(positions.Select(i => p.Timesteps[i]).ToArray());
                context.AssertClose(id + ".add_noise.timesteps", t);
                noisy = p.AddNoise(x0, noise, t);
                break;
            }
            default:
                throw new XunitException($"{id}: no add_noise for {sampler.GetType().Name}");
        }
        context.AssertClose(id + ".add_noise.noisy_samples", noisy);
    }

    internal static void AssertEffectiveConfig(string what, JsonElement expected, IReadOnlyDictionary<string, object?> actual)
    {
        var expectedKeys = expected.EnumerateObject().Select(p => p.Name).ToArray();
        if (!expectedKeys.SequenceEqual(actual.Keys))
            throw new XunitException($"{what}: constructor arguments [{string.Join(", ", actual.Keys)}], expected [{string.Join(", ", expectedKeys)}]");
        foreach (var property in expected.EnumerateObject())
        {
            if (!SameValue(property.Value, actual[property.Name]))
                throw new XunitException($"{what}: {property.Name} is {JsonSerializer.Serialize(actual[property.Name])}, expected {property.Value.GetRawText()}");
        }
    }

    private static bool SameValue(JsonElement expected, object? actual) => expected.ValueKind switch
    {
        JsonValueKind.Null => actual is null,
        JsonValueKind.True or JsonValueKind.False => actual is bool b && b == expected.GetBoolean(),
        JsonValueKind.Number => actual is int i ? i == expected.GetDouble() : actual is double d && d == expected.GetDouble(),
        JsonValueKind.String => expected.GetString() switch
        {
            "-inf" => actual is double d && double.IsNegativeInfinity(d),
            var s => actual is string a && a == s,
        },
        JsonValueKind.Array => actual switch
        {
            int[] ints => ints.Select(v => (double)v).SequenceEqual(expected.EnumerateArray().Select(e => e.GetDouble())),
            double[] doubles => doubles.SequenceEqual(expected.EnumerateArray().Select(e => e.GetDouble())),
            _ => false,
        },
        _ => false,
    };
}

/// <summary>"&lt;case&gt;/scheduler-chain-euler".</summary>
public sealed class SchedulerChainEulerCheck() : SchedulerChainCheck("euler", "EulerDiscreteScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-euler-ancestral" (noise injected, and the seeded generator checked against it).</summary>
public sealed class SchedulerChainEulerAncestralCheck() : SchedulerChainCheck("euler-ancestral", "EulerAncestralDiscreteScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-unipc".</summary>
public sealed class SchedulerChainUniPCCheck() : SchedulerChainCheck("unipc", "UniPCMultistepScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-pndm".</summary>
public sealed class SchedulerChainPndmCheck() : SchedulerChainCheck("pndm", "PNDMScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-lms".</summary>
public sealed class SchedulerChainLmsCheck() : SchedulerChainCheck("lms", "LMSDiscreteScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-heun".</summary>
public sealed class SchedulerChainHeunCheck() : SchedulerChainCheck("heun", "HeunDiscreteScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-kdpm2".</summary>
public sealed class SchedulerChainKDpm2Check() : SchedulerChainCheck("kdpm2", "KDPM2DiscreteScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-dpmsolver-singlestep".</summary>
public sealed class SchedulerChainDpmSolverSinglestepCheck() : SchedulerChainCheck("dpmsolver-singlestep", "DPMSolverSinglestepScheduler");

/// <summary>"&lt;case&gt;/scheduler-chain-deis".</summary>
public sealed class SchedulerChainDeisCheck() : SchedulerChainCheck("deis", "DEISMultistepScheduler");
