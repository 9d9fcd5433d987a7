using System.Globalization;
using AttnDreamBooth.Benchmarks.Attention;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

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
/// <c>tests/fixtures/real-size/stable-diffusion-2-1-base/unet/config.json</c>), batch 1: forward with the map recorder on
/// every attn2 layer (two tokens), MSE + a map loss, backward, the library's AdamW with the paper plan's settings over the parameters the library's stage rules train —
/// for the LoRA stages, the adapters only (rank 4 unless <c>ATTNDREAMBOOTH_BENCH_LORA_RANK</c> says otherwise).
/// "Peak native" is the resident-set growth over the step (VmHWM after a reset minus the RSS before it): with the
/// gradients kept allocated between steps, that is the step's activation memory plus transients.
/// </summary>
[Config(typeof(TrainingStepConfig))]
public abstract class UNetTrainingStepBenchmarkBase
{
    private const int TextTokens = 77;
    private UNet2DConditionModel _unet = null!;
    private Parameter[] _trainable = [];
    private AdamWOptimizer _optimizer = null!;
    private AttentionMapStore _store = null!;
    private AttentionRecordingSession _session = null!;
    private Tensor _latents = null!, _timestep = null!, _target = null!, _text = null!;
    private Parameter? _concept;
    private LoraNetwork? _lora;
    private bool _measuring;

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
        manual_seed(0);
        // The override exists to smoke-test the benchmark code on a tiny config; results are only meaningful at real size.
        string config = Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_UNET_CONFIG")
            ?? Path.Combine(RepoRoot(), "tests", "fixtures", "real-size", "stable-diffusion-2-1-base", "unet", "config.json");
        _unet = new UNet2DConditionModel(UNetConfig.Load(config), CPU);
        _unet.train();
        _unet.GradientCheckpointing = Checkpointing;
        var (stage, lora) = Of(Stage);
        // The paper plan's settings of the stage (with its default LoRA layers for the LoRA stages), and the library's
        // rules for which parameters it trains: what the trainer runs.
        var plan = lora ? StagePlan.Paper.WithLora(new LoraOptions(Rank: LoraRank())) : StagePlan.Paper;
        var settings = plan[stage];
        var named = _unet.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        IReadOnlyList<(string Name, Parameter Parameter)> trainable;
        if (lora)
        {
            StageParameters.FreezeAll(named);
            // Adapters hooked on the frozen U-Net (up projections start at zero, as in training).
            _lora = LoraNetwork.Create(_unet, StagePlan.LoraModulesOf(stage, settings), null, LoraTextEncoderModules.None, settings.Lora!);
            _lora.Install();
            trainable = _lora.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        }
        else
        {
            trainable = StageParameters.Freeze(stage, named);
        }
        var g = new Generator(1);
        _latents = randn([1, 4, Latent, Latent], generator: g);
        _target = randn([1, 4, Latent, Latent], generator: g);
        _timestep = tensor(500L);
        _text = randn([1, TextTokens, _unet.Config.CrossAttentionDim[0]], generator: g);
        if (stage == TrainingStage.Embedding)
        {
            _concept = new Parameter(randn([2, _unet.Config.CrossAttentionDim[0]], generator: g));
            trainable = [("concept", _concept)];
        }
        _trainable = trainable.Select(p => p.Parameter).ToArray();
        _optimizer = new AdamWOptimizer(trainable, settings.Optimizer, settings.LearningRate);
        _store = new AttentionMapStore();
        _session = _unet.Attach(_store, AttentionTokenSelection.Positions(5, 6));
        StepFacts.Write(Key, "trainable", _trainable.Sum(p => p.numel()));
        // Allocate the gradients and AdamW's moments before anything is measured: "Peak native" keeps the maximum
        // over invocations and must not include these one-time allocations.
        StepCore();
    }

    /// <summary>The LoRA stages' rank: 4, or <c>ATTNDREAMBOOTH_BENCH_LORA_RANK</c>.</summary>
    private static int LoraRank() =>
        int.TryParse(Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_LORA_RANK"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int rank) ? rank : 4;

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("Run the benchmarks from inside the repository (AttnDreamBooth.sln not found above " + AppContext.BaseDirectory + ").");
    }

    /// <summary>One training step.</summary>
    protected void RunStep()
    {
        long steady = StatusKiB("VmRSS:") * 1024;
        using (PeakNativeMemory.Measure(Key))
        {
            _measuring = true;
            StepCore();
            _measuring = false;
        }
        StepFacts.Write(Key, "peak", StatusKiB("VmHWM:") * 1024);
        StepFacts.Write(Key, "steady", steady);
    }

    private void StepCore()
    {
        using (var scope = NewDisposeScope())
        {
            // Keep gradients allocated (zeroed) between steps, so the steady state holds them and the growth is activations.
            foreach (var p in _trainable) p.grad?.zero_();
            var text = _concept is null ? _text : cat([_text[.., ..5], _concept.unsqueeze(0), _text[.., 7..]], 1);
            var prediction = _unet.call(_latents, _timestep, text);
            var regularizer = zeros([]);
            foreach (var map in _store.Maps)
            {
                var mean = map.Probabilities.mean([1L, 2L]);
                regularizer = regularizer + (mean[.., 0] - mean[.., 1]).pow(2).sum();
            }
            var loss = nn.functional.mse_loss(prediction, _target) + regularizer.mul(1e-2);
            loss.backward();
            // The optimizer step's temporaries would hide the activations in the step's peak: record the peak before it too.
            if (_measuring) StepFacts.Write(Key, "backwardPeak", StatusKiB("VmHWM:") * 1024);
            _optimizer.Step();
            _store.Clear();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        PeakNativeMemory.Flush();
        StepFacts.Write(Key, "optimizer", _optimizer.StateBytes);
        StepFacts.Write(Key, "frozenWithGrad", _unet.parameters().Count(p => !p.requires_grad && p.grad is not null));
        _session.Dispose();
        _store.Dispose();
        _optimizer.Dispose();
        _lora?.Dispose();
        _unet.Dispose();
    }

    private static long StatusKiB(string field)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return 0;
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
