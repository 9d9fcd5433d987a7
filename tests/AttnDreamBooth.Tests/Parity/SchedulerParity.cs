using AttnDreamBooth.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Parity;

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
