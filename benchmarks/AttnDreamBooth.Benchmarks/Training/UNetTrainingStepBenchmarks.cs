using System.Globalization;
using AttnDreamBooth.Benchmarks.Attention;
using AttnDreamBooth.Personalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>Which parameters a training step updates: the three AttnDreamBooth stages (<see cref="TrainingStage"/>), and
/// stages 2 and 3 with LoRA adapters.</summary>
public enum BenchmarkStage
{
    /// <summary>Stage 1: a two-token concept embedding spliced into the text states; the U-Net is frozen.</summary>
    TextEmbedding,

    /// <summary>Stage 2: the cross-attention projections (<c>attn2.to_q/to_k/to_v/to_out.0</c>).</summary>
    CrossAttention,

    /// <summary>Stage 3: the whole U-Net.</summary>
    FullUNet,

    /// <summary>Stage 2 with LoRA: adapters on the cross-attention projections, every U-Net weight frozen.</summary>
    LoraCrossAttention,

    /// <summary>Stage 3 with LoRA: adapters on attention, feed-forward and transformer projections (the default stage-3
    /// layers), every U-Net weight frozen.</summary>
    LoraUNet,
}

/// <summary>A training step is seconds long: one step per invocation, one warm-up step, three measured steps, one process.</summary>
public sealed class TrainingStepConfig : ManualConfig
{
    public TrainingStepConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3).WithInvocationCount(1).WithUnrollFactor(1)
            .WithStrategy(RunStrategy.Monitoring).WithId("Step"));
        AddColumn(new PeakNativeMemoryColumn());
        AddColumn(new StepFactColumn("peak", "Peak RSS", "Process resident-set high-water mark (VmHWM) during a step", bytes: true));
        AddColumn(new StepFactColumn("backwardPeak", "Peak RSS fwd+bwd", "VmHWM after backward, before the optimizer step (activations = this - Steady RSS)", bytes: true));
        AddColumn(new StepFactColumn("steady", "Steady RSS", "Resident set before a step: weights, gradients, optimizer moments", bytes: true));
        AddColumn(new StepFactColumn("optimizer", "AdamW state", "Bytes of the AdamW moments (exp_avg + exp_avg_sq) after a step", bytes: true));
        AddColumn(new StepFactColumn("trainable", "Trainable", "Trainable parameters (elements)", bytes: false));
        AddColumn(new StepFactColumn("frozenWithGrad", "Frozen w/ grad", "Frozen U-Net parameters holding a gradient after the step (must be 0)", bytes: false));
        WithOption(ConfigOptions.JoinSummary, true);
    }
}

/// <summary>
/// One training step of the Stable Diffusion 2.1-base U-Net (random weights at real size, from
/// <c>tests/fixtures/real-size/stable-diffusion-2-1-base/unet/config.json</c>), batch 1, set up as the trainer sets a stage
/// up (<see cref="TrainingStepRig"/>): float32 weights and AdamW moments — for the LoRA stages, the adapters only (rank 4
/// unless <c>ATTNDREAMBOOTH_BENCH_LORA_RANK</c> says otherwise). The memory options are swept by the
/// <c>memory-table</c> command (<see cref="MemoryTable"/>) instead.
/// "Peak native" is the resident-set growth over the step (VmHWM after a reset minus the RSS before it): with the
/// gradients kept allocated between steps, that is the step's activation memory plus transients.
/// </summary>
[Config(typeof(TrainingStepConfig))]
public abstract class UNetTrainingStepBenchmarkBase
{
    private TrainingStepRig _rig = null!;

    [ParamsSource(nameof(Stages))]
    public BenchmarkStage Stage { get; set; }

    /// <summary>All stages, or those named (comma-separated) in <c>ATTNDREAMBOOTH_BENCH_STAGES</c>.</summary>
    public static IEnumerable<BenchmarkStage> Stages() =>
        Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_STAGES") is { Length: > 0 } names
            ? names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Enum.Parse<BenchmarkStage>)
            : Enum.GetValues<BenchmarkStage>();

    /// <summary>The library's stage of a benchmark stage and whether it trains LoRA adapters.</summary>
    internal static (TrainingStage Stage, bool Lora) Of(BenchmarkStage stage) => stage switch
    {
        BenchmarkStage.TextEmbedding => (TrainingStage.Embedding, false),
        BenchmarkStage.CrossAttention => (TrainingStage.CrossAttention, false),
        BenchmarkStage.FullUNet => (TrainingStage.UNet, false),
        BenchmarkStage.LoraCrossAttention => (TrainingStage.CrossAttention, true),
        BenchmarkStage.LoraUNet => (TrainingStage.UNet, true),
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "Unknown benchmark stage."),
    };

    [ParamsSource(nameof(CheckpointingValues))]
    public bool Checkpointing { get; set; }

    /// <summary>Off and on, or only the value in <c>ATTNDREAMBOOTH_BENCH_CHECKPOINTING</c> (true/false).</summary>
    public static IEnumerable<bool> CheckpointingValues() =>
        bool.TryParse(Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_CHECKPOINTING"), out bool only) ? [only] : [false, true];

    /// <summary>Latent side (32 = 256 px, 64 = 512 px).</summary>
    protected abstract int Latent { get; }

    /// <summary>The benchmark class's name (BenchmarkDotNet runs a generated subclass, so GetType() will not do).</summary>
    protected abstract string TypeName { get; }

    private string Key => AttentionKernelBenchmarkBase.Key(TypeName, nameof(Step),
        [Invariant(Checkpointing), Invariant(Stage)]);

    private static string Invariant(object value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";

    [GlobalSetup]
    public void Setup()
    {
        PeakNativeMemory.Configure();
        // The override exists to smoke-test the benchmark code on a tiny config; results are only meaningful at real size.
        string config = Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_UNET_CONFIG") ?? TrainingStepRig.RealSizeConfig();
        _rig = new TrainingStepRig(config, Stage, Latent, new TrainingOptions { GradientCheckpointing = Checkpointing }, LoraRank(), keepGradients: true);
        StepFacts.Write(Key, "trainable", _rig.TrainableElements);
        // Allocate the gradients and AdamW's moments before anything is measured: "Peak native" keeps the maximum
        // over invocations and must not include these one-time allocations.
        _rig.Step();
    }

    /// <summary>The LoRA stages' rank: 4, or <c>ATTNDREAMBOOTH_BENCH_LORA_RANK</c>.</summary>
    private static int LoraRank() =>
        int.TryParse(Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_LORA_RANK"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int rank) ? rank : 4;

    /// <summary>One training step.</summary>
    protected void RunStep()
    {
        long steady = TrainingStepRig.StatusKiB("VmRSS:") * 1024;
        using (PeakNativeMemory.Measure(Key))
        {
            // The optimizer step's temporaries would hide the activations in the step's peak: record the peak before it too.
            _rig.Step(() => StepFacts.Write(Key, "backwardPeak", TrainingStepRig.StatusKiB("VmHWM:") * 1024));
        }
        StepFacts.Write(Key, "peak", TrainingStepRig.StatusKiB("VmHWM:") * 1024);
        StepFacts.Write(Key, "steady", steady);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        PeakNativeMemory.Flush();
        StepFacts.Write(Key, "optimizer", _rig.OptimizerStateBytes);
        StepFacts.Write(Key, "frozenWithGrad", _rig.FrozenWithGradient);
        _rig.Dispose();
    }

    /// <summary>The benchmark method (declared by the sized classes so their names select the quick job).</summary>
    public abstract void Step();
}

/// <summary>32x32 latents (256 px): the quick job, <c>--filter '*UNetTrainingStep32*'</c>.</summary>
public class UNetTrainingStep32Benchmarks : UNetTrainingStepBenchmarkBase
{
    protected override int Latent => 32;

    protected override string TypeName => nameof(UNetTrainingStep32Benchmarks);

    [Benchmark(Description = "U-Net step 32x32")]
    public override void Step() => RunStep();
}

/// <summary>64x64 latents (512 px, the SD 2.1-base training size).</summary>
public class UNetTrainingStep64Benchmarks : UNetTrainingStepBenchmarkBase
{
    protected override int Latent => 64;

    protected override string TypeName => nameof(UNetTrainingStep64Benchmarks);

    [Benchmark(Description = "U-Net step 64x64")]
    public override void Step() => RunStep();
}
