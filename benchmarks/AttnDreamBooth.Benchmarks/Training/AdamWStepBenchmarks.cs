using System.Text.Json;
using AttnDreamBooth.Benchmarks.Attention;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>One optimizer step per invocation (0.1–30 s depending on the machine's load): 1 warm-up and 3 measured steps
/// per case, run in the benchmark process (cases run one after another and release their tensors in cleanup).</summary>
public sealed class AdamWStepConfig : ManualConfig
{
    public AdamWStepConfig()
    {
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3).WithInvocationCount(1).WithUnrollFactor(1)
            .WithStrategy(RunStrategy.Monitoring).WithId("AdamW")
            // In-process with a generous timeout: a multi-op step over the subset takes 20-30 s on a loaded 2-core
            // machine, and the per-case builds of the default toolchain time out there.
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(60), logOutput: true)));
        AddColumn(new PeakNativeMemoryColumn());
        AddColumn(new StepFactColumn("trainable", "Parameters", "Elements updated per step", bytes: false));
        AddColumn(new StepFactColumn("state", "Moments", "Bytes of the AdamW moments (AdamWOptimizer.StateBytes)", bytes: true));
        AddColumn(new StepFactColumn("threads", "Threads", "torch.get_num_threads() in the benchmark process", bytes: false));
        WithOption(ConfigOptions.JoinSummary, true);
    }
}

/// <summary>
/// The product's <see cref="AdamWOptimizer.Step"/> over parameter tensors with the shapes of the real Stable Diffusion
/// 2.1-base U-Net (<c>tests/fixtures/real-size/stable-diffusion-2-1-base/unet/state_dict_shapes.json</c>), random values
/// and gradients (the cost of a step does not depend on them), lr 2e-6 and weight decay 1e-2 (stage 3's settings):
/// the original multi-op update (the baseline, today's <c>Step</c>), the one-pass update, and the one-pass update with
/// 8-bit moments (fused kernel, and the tensor-op reference). "Peak native" is the resident-set growth during a step: the temporaries the update allocates.
/// </summary>
[Config(typeof(AdamWStepConfig))]
public abstract class AdamWStepBenchmarkBase
{
    private List<(string Name, Parameter Parameter)> _parameters = [];
    private AdamWOptimizer _optimizer = null!;
    private string _key = "";

    /// <summary>Selects the U-Net tensors to update (by state-dict name).</summary>
    protected abstract bool Includes(string name);

    /// <summary>The benchmark class's name (BenchmarkDotNet runs a generated subclass).</summary>
    protected abstract string TypeName { get; }

    /// <summary>Called first in every setup: lets a class refuse to run (e.g. without an explicit opt-in).</summary>
    protected virtual void CheckMachine()
    {
    }

    [GlobalSetup(Target = nameof(MultiOp))]
    public void SetupMultiOp() => Setup(nameof(MultiOp), AdamWUpdatePath.MultiOp, AdamWStateFormat.Float32);

    [GlobalSetup(Target = nameof(OnePass))]
    public void SetupOnePass() => Setup(nameof(OnePass), AdamWUpdatePath.OnePass, AdamWStateFormat.Float32);

    [GlobalSetup(Target = nameof(OnePass8Bit))]
    public void SetupOnePass8Bit() => Setup(nameof(OnePass8Bit), AdamWUpdatePath.OnePass, AdamWStateFormat.BlockwiseInt8);

    [GlobalSetup(Target = nameof(OnePass8BitTensorOps))]
    public void SetupOnePass8BitTensorOps() => Setup(nameof(OnePass8BitTensorOps), AdamWUpdatePath.OnePass, AdamWStateFormat.BlockwiseInt8, fuseQuantization: false);

    private void Setup(string method, AdamWUpdatePath path, AdamWStateFormat format, bool fuseQuantization = true)
    {
        CheckMachine();
        PeakNativeMemory.Configure();
        _key = AttentionKernelBenchmarkBase.Key(TypeName, method, []);
        string file = Path.Combine(RepoRoot(), "tests", "fixtures", "real-size", "stable-diffusion-2-1-base", "unet", "state_dict_shapes.json");
        var shapes = JsonSerializer.Deserialize<Dictionary<string, long[]>>(File.ReadAllText(file))
            ?? throw new InvalidDataException($"'{file}' holds no shapes.");
        var generator = new Generator(7);
        using (no_grad())
        {
            foreach (var (name, shape) in shapes.Where(s => Includes(s.Key)))
            {
                var p = new Parameter(randn(shape, generator: generator));
                p.grad = randn(shape, generator: generator).mul_(1e-3);
                _parameters.Add((name, p));
            }
        }
        if (_parameters.Count == 0) throw new InvalidOperationException("No U-Net tensor selected.");
        _optimizer = new AdamWOptimizer(_parameters, StagePlan.Paper.Stage3.Optimizer, StagePlan.Paper.Stage3.LearningRate, format)
        {
            UpdatePath = path,
            FuseQuantizedUpdate = fuseQuantization,
        };
        // The first step allocates the moments; measured steps then see only the update's own temporaries.
        _optimizer.Step();
        StepFacts.Write(_key, "trainable", _parameters.Sum(p => p.Parameter.NumberOfElements));
        StepFacts.Write(_key, "state", _optimizer.StateBytes);
        StepFacts.Write(_key, "threads", get_num_threads());
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("Run the benchmarks from inside the repository (AttnDreamBooth.sln not found above " + AppContext.BaseDirectory + ").");
    }

    private void MeasuredStep()
    {
        using (PeakNativeMemory.Measure(_key)) _optimizer.Step();
    }

    /// <summary>Today's update: nine whole-tensor operations per parameter (the baseline).</summary>
    [Benchmark(Baseline = true, Description = "multi-op (today)")]
    public void MultiOp() => MeasuredStep();

    /// <summary>The one-pass update with float32 moments.</summary>
    [Benchmark(Description = "one-pass")]
    public void OnePass() => MeasuredStep();

    /// <summary>The one-pass update with 8-bit block-wise moments: the fused kernel (dequantize, update, quantize per block).</summary>
    [Benchmark(Description = "one-pass, 8-bit states")]
    public void OnePass8Bit() => MeasuredStep();

    /// <summary>The same 8-bit step through the tensor-op reference (<c>index_select</c> dequantization,
    /// <c>abs</c>/<c>amax</c>/<c>div</c>/<c>bucketize</c> quantization around the one-pass update): what other devices
    /// run. Slow on the CPU (minutes per step over the default subset): select it on <see cref="AdamWQuickStepBenchmarks"/>.</summary>
    [Benchmark(Description = "one-pass, 8-bit states, tensor-op quantization")]
    public void OnePass8BitTensorOps() => MeasuredStep();

    [GlobalCleanup]
    public void Cleanup()
    {
        PeakNativeMemory.Flush();
        _optimizer?.Dispose();
        foreach (var (_, p) in _parameters)
        {
            p.grad?.Dispose();
            p.Dispose();
        }
        _parameters = [];
    }
}

/// <summary>
/// A representative subset of the SD 2.1-base U-Net, sized for a shared machine: <c>down_blocks.0</c>,
/// <c>down_blocks.1</c> and <c>mid_block</c> — 196 tensors, 146,019,520 parameters, from 320-element norms to
/// 14.7 M-element 3×3 convolutions (≈ 2.3 GB for parameters, gradients and float32 moments).
/// <c>--filter '*AdamWStepBenchmarks.MultiOp' '*AdamWStepBenchmarks.OnePass' '*AdamWStepBenchmarks.OnePass8Bit'</c> runs the three
/// main cases (the tensor-op 8-bit reference takes minutes per step here).
/// </summary>
public class AdamWStepBenchmarks : AdamWStepBenchmarkBase
{
    protected override string TypeName => nameof(AdamWStepBenchmarks);

    protected override bool Includes(string name) =>
        name.StartsWith("down_blocks.0.", StringComparison.Ordinal) || name.StartsWith("down_blocks.1.", StringComparison.Ordinal)
        || name.StartsWith("mid_block.", StringComparison.Ordinal);
}

/// <summary>
/// <c>down_blocks.0</c> of the SD 2.1-base U-Net only (10,852,160 parameters, 320-element norms to 0.9 M-element 3×3
/// convolutions): a quick side-by-side of all four cases that a loaded shared machine can run in minutes, including
/// the slow tensor-op 8-bit reference. <c>--filter '*AdamWQuickStepBenchmarks*'</c>.
/// </summary>
public class AdamWQuickStepBenchmarks : AdamWStepBenchmarkBase
{
    protected override string TypeName => nameof(AdamWQuickStepBenchmarks);

    protected override bool Includes(string name) => name.StartsWith("down_blocks.0.", StringComparison.Ordinal);
}

/// <summary>
/// All 865,910,724 parameters of the SD 2.1-base U-Net (stage 3). Needs ≈ 14 GB for parameters, gradients and float32
/// moments plus the multi-op update's temporaries: run it on an otherwise idle machine with ≥ 20 GB free, opting in
/// with <c>ATTNDREAMBOOTH_BENCH_FULL_UNET=1</c> and <c>--filter '*AdamWFullUNetStepBenchmarks*'</c> (or
/// <c>--anyCategories FullSize</c>).
/// </summary>
[BenchmarkCategory("FullSize")]
public class AdamWFullUNetStepBenchmarks : AdamWStepBenchmarkBase
{
    protected override string TypeName => nameof(AdamWFullUNetStepBenchmarks);

    protected override bool Includes(string name) => true;

    protected override void CheckMachine()
    {
        if (Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_FULL_UNET") != "1")
            throw new InvalidOperationException("The full-size AdamW benchmark allocates ~14 GB; set ATTNDREAMBOOTH_BENCH_FULL_UNET=1 on an idle machine with >= 20 GB free to run it.");
    }
}
