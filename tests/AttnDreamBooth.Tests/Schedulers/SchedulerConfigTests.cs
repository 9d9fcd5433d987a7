using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Tests.Parity;

namespace AttnDreamBooth.Tests.Schedulers;

public sealed class SchedulerConfigTests
{
    public static TheoryData<string> PipelineCases()
    {
        var data = new TheoryData<string>();
        foreach (var fixture in FixtureRoots.Cases.Values.Where(SchedulerParity.IsSdPipeline)) data.Add(fixture.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(PipelineCases))]
    public void EffectiveConfigsEqualTheReference(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        var config = SchedulerParity.Config(fixture);
        Assert.Equal(fixture.Manifest.Fact("scheduler.class_in_pipeline").GetString(), config.ClassName);

        // diffusers keeps the file's keys that DDPM/DDIM do not take in their config ("hidden" keys); the reference lists them.
        AssertSameConfig(fixture.Manifest.Fact("scheduler.ddpm_effective_config"), WithCarried(config.For(SchedulerClass.Ddpm)), "DDPM");
        AssertSameConfig(fixture.Manifest.Fact("scheduler.ddim_effective_config"), WithCarried(config.For(SchedulerClass.Ddim)), "DDIM");
        foreach (var (prefix, overrides) in SchedulerDpmSolverCheck.Chains)
        {
            // The short chain uses the plain chain's config and has no entry of its own.
            if (prefix == "scheduler.dpmsolver_short") continue;
            string key = prefix + "_effective_config";
            var resolved = config.With(overrides).For(SchedulerClass.DpmSolverMultistep);
            AssertSameConfig(fixture.Manifest.Fact(key), resolved.ConstructorArguments, prefix);
        }
        Assert.Equal(fixture.Manifest.Fact("scheduler.init_noise_sigma").GetDouble(), DdimScheduler.FromConfig(config).InitNoiseSigma);
    }

    [Fact]
    public void Sd15PndmConfigBuildsDdimAndDpmSolverWithTheFileValues()
    {
        var config = SchedulerConfig.Load(Path.Combine(FixtureRoots.RealSize, "stable-diffusion-v1-5", "scheduler", "scheduler_config.json"));
        Assert.Equal(SchedulerClass.Pndm, config.Class);
        Assert.True(config.SkipPrkSteps);

        using var ddim = DdimScheduler.FromConfig(config);
        Assert.False(ddim.Config.ClipSample);
        Assert.False(ddim.Config.SetAlphaToOne);
        Assert.Equal(ddim.Schedule.AlphasCumprod[0], ddim.FinalAlphaCumprod);
        Assert.Equal(PredictionType.Epsilon, ddim.PredictionType);
        Assert.Equal(["skip_prk_steps"], ddim.Config.CarriedKeys.Keys);
        ddim.SetTimesteps(50);
        int ratio = config.NumTrainTimesteps / 50;
        Assert.Equal(Enumerable.Range(0, 50).Reverse().Select(i => (long)(i * ratio + config.StepsOffset)), ddim.Timesteps);

        using var dpm = DpmSolverMultistepScheduler.FromConfig(config);
        Assert.Equal(TimestepSpacing.Leading, dpm.Config.TimestepSpacing);
        Assert.Equal(DpmSolverAlgorithm.DpmSolverPlusPlus, dpm.Config.AlgorithmType);
        Assert.Equal(2, dpm.Config.SolverOrder);
        dpm.SetTimesteps(50);
        int dpmRatio = config.NumTrainTimesteps / 51;
        Assert.Equal(Enumerable.Range(1, 50).Reverse().Select(i => (long)(i * dpmRatio + config.StepsOffset)), dpm.Timesteps);

        using var ddpm = DdpmScheduler.FromConfig(config);
        Assert.False(ddpm.Config.ClipSample);
        Assert.Equal(DdpmVarianceType.FixedSmall, ddpm.VarianceType);
    }

    [Fact]
    public void Sd21ConfigWithoutSpacingGivesDpmSolverItsLinspaceDefault()
    {
        var config = SchedulerConfig.Load(Path.Combine(FixtureRoots.RealSize, "stable-diffusion-2-1", "scheduler", "scheduler_config.json"));
        Assert.DoesNotContain("timestep_spacing", config.FileKeys);
        Assert.Equal(TimestepSpacing.Leading, config.For(SchedulerClass.Ddim).TimestepSpacing);
        using var dpm = DpmSolverMultistepScheduler.FromConfig(config);
        Assert.Equal(TimestepSpacing.Linspace, dpm.Config.TimestepSpacing);
        Assert.Equal(PredictionType.VPrediction, dpm.PredictionType);
        dpm.SetTimesteps(16);
        Assert.Equal(config.NumTrainTimesteps - 1, dpm.Timesteps[0]);
        Assert.DoesNotContain(0L, dpm.Timesteps);
    }

    [Fact]
    public void MissingKeysTakeTheTargetClassDefaults()
    {
        var config = SchedulerConfig.Parse("""{"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "some_future_key": [1, 2]}""");
        Assert.False(config.SetAlphaToOne); // PNDM's default
        var ddim = config.For(SchedulerClass.Ddim);
        Assert.True(ddim.ClipSample);
        Assert.True(ddim.SetAlphaToOne);
        Assert.Equal(0, ddim.StepsOffset);
        Assert.Equal(0.0001, ddim.BetaStart);
        var dpm = config.For(SchedulerClass.DpmSolverMultistep);
        Assert.Equal(TimestepSpacing.Linspace, dpm.TimestepSpacing);
        Assert.Null(dpm.VarianceType);
        Assert.True(double.IsNegativeInfinity(dpm.LambdaMinClipped));
        Assert.Contains("some_future_key", ddim.CarriedKeys.Keys);
    }

    [Theory]
    [InlineData("beta_schedule", "\"cosine\"")]
    [InlineData("prediction_type", "\"noise\"")]
    [InlineData("timestep_spacing", "\"uniform\"")]
    [InlineData("variance_type", "\"fixed\"")]
    [InlineData("algorithm_type", "\"unipc\"")]
    [InlineData("num_train_timesteps", "\"1000\"")]
    [InlineData("num_train_timesteps", "0")]
    [InlineData("solver_order", "4")]
    [InlineData("clip_sample", "1")]
    [InlineData("trained_betas", "[0.1, 0.2]")]
    public void BadValuesNameTheFileAndKey(string key, string json)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("scheduler_config.json");
        File.WriteAllText(path, $$"""{"_class_name": "DDIMScheduler", "{{key}}": {{json}} }""");
        var error = Assert.Throws<ModelConfigException>(() => SchedulerConfig.Load(path));
        Assert.Equal(key, error.Key);
        Assert.Equal(Path.GetFullPath(path), error.FilePath);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StochasticDpmSolverIsRefusedByName()
    {
        var config = SchedulerConfig.Parse("""{"algorithm_type": "sde-dpmsolver++"}""", "cfg.json");
        var error = Assert.Throws<ModelConfigException>(() => DpmSolverMultistepScheduler.FromConfig(config));
        Assert.Equal("algorithm_type", error.Key);
    }

    private static IReadOnlyDictionary<string, object?> WithCarried(SchedulerConfig config)
    {
        var all = new Dictionary<string, object?>(config.ConstructorArguments);
        foreach (var (key, value) in config.CarriedKeys) all[key] = value;
        return all;
    }

    private static void AssertSameConfig(JsonElement expected, IReadOnlyDictionary<string, object?> actual, string what)
    {
        var expectedKeys = expected.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expectedKeys, actual.Keys.Order(StringComparer.Ordinal).ToArray());
        foreach (var property in expected.EnumerateObject())
            Assert.True(SameValue(property.Value, actual[property.Name]), $"{what}: {property.Name} is {Show(actual[property.Name])}, expected {property.Value.GetRawText()}");
    }

    private static bool SameValue(JsonElement expected, object? actual) => expected.ValueKind switch
    {
        JsonValueKind.Null => actual is null,
        JsonValueKind.True or JsonValueKind.False => actual is bool b && b == expected.GetBoolean()
            || actual is JsonElement { ValueKind: JsonValueKind.True or JsonValueKind.False } je && je.GetBoolean() == expected.GetBoolean(),
        JsonValueKind.Number => actual switch
        {
            int i => i == expected.GetDouble(),
            double d => d == expected.GetDouble(),
            JsonElement { ValueKind: JsonValueKind.Number } je => je.GetDouble() == expected.GetDouble(),
            _ => false,
        },
        JsonValueKind.String => expected.GetString() switch
        {
            "-inf" => actual is double d && double.IsNegativeInfinity(d),
            "inf" => actual is double d && double.IsPositiveInfinity(d),
            var s => actual is string a && a == s || actual is JsonElement { ValueKind: JsonValueKind.String } je && je.GetString() == s,
        },
        JsonValueKind.Array => actual is double[] arr && arr.SequenceEqual(expected.EnumerateArray().Select(e => e.GetDouble())),
        _ => false,
    };

    private static string Show(object? value) => value switch
    {
        null => "null",
        JsonElement e => e.GetRawText(),
        double[] a => $"[{string.Join(", ", a)}]",
        _ => value.ToString() ?? "",
    };
}
