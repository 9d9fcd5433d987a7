using System.Diagnostics;
using System.Globalization;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// One U-Net training step set up the way the trainer sets a stage up, for the training benchmarks: a U-Net built from a
/// config (random weights; a step's cost does not depend on their values), the trainer's stage rule for what trains
/// (<see cref="StageParameters"/>, or the stage's default LoRA layers), the trainer's frozen-precision rule
/// (<see cref="TrainingMemoryPlan.CastFrozenUNet"/>) and its optimizer (<see cref="StageOptimizer.Create"/>) with
/// <see cref="StagePlan.Paper"/>'s settings of the stage. A step = forward with the map recorder on every attn2 layer (two
/// tokens) → MSE + a map loss → backward → the stage's gradient clipping → AdamW. Batch 1, 77 text tokens.
/// </summary>
internal sealed class TrainingStepRig : IDisposable
{
    private const int TextTokens = 77;
    private readonly Parameter[] _trainable;
    private readonly AdamWOptimizer _optimizer;
    private readonly StageOptions _settings;
    private readonly AttentionMapStore _store;
    private readonly AttentionRecordingSession _session;
    private readonly Tensor _latents, _timestep, _target, _text;
    private readonly Parameter? _concept;
    private readonly LoraNetwork? _lora;
    private readonly bool _keepGradients;

    /// <param name="unetConfig">The U-Net's config.json.</param>
    /// <param name="stage">Which parameters train.</param>
    /// <param name="latent">Latent side (32 = 256 px, 64 = 512 px).</param>
    /// <param name="options">The run's memory options as the pipeline takes them (<see cref="TrainingOptions.GradientCheckpointing"/>,
    /// <see cref="TrainingOptions.FrozenWeightsDType"/>, <see cref="TrainingOptions.EightBitOptimizerStates"/>).</param>
    /// <param name="loraRank">The LoRA stages' rank.</param>
    /// <param name="keepGradients">Keep the gradients allocated (zeroed) between steps, so the steady state holds them and a
    /// step's growth is its activations; otherwise they are dropped after each step, as the trainer does.</param>
    public TrainingStepRig(string unetConfig, BenchmarkStage stage, int latent, TrainingOptions options, int loraRank, bool keepGradients)
    {
        ArgumentNullException.ThrowIfNull(options);
        _keepGradients = keepGradients;
        manual_seed(0);
        UNet = new UNet2DConditionModel(UNetConfig.Load(unetConfig), CPU);
        UNet.GradientCheckpointing = options.GradientCheckpointing;
        var (trainingStage, lora) = UNetTrainingStepBenchmarkBase.Of(stage);
        // The trainer's training modes: the U-Net in train mode where it changes (stages 2-3), eval in stage 1.
        if (trainingStage == TrainingStage.Embedding) UNet.eval();
        else UNet.train();
        var plan = lora ? StagePlan.Paper.WithLora(new LoraOptions(Rank: loraRank)) : StagePlan.Paper;
        _settings = plan[trainingStage];
        var g = new Generator(1);
        _latents = randn([1, 4, latent, latent], generator: g);
        _target = randn([1, 4, latent, latent], generator: g);
        _timestep = tensor(500L);
        _text = randn([1, TextTokens, UNet.Config.CrossAttentionDim[0]], generator: g);
        if (lora)
        {
            StageParameters.FreezeAll(Named());
            // Adapters hooked on the frozen U-Net (up projections start at zero, as in training).
            _lora = LoraNetwork.Create(UNet, StagePlan.LoraModulesOf(trainingStage, _settings), null, LoraTextEncoderModules.None, _settings.Lora!);
            _lora.Install();
            _lora.train();
        }
        else
        {
            StageParameters.Freeze(trainingStage, Named());
        }
        if (trainingStage == TrainingStage.Embedding) _concept = new Parameter(randn([2, UNet.Config.CrossAttentionDim[0]], generator: g));
        // As the trainer: decide what trains, then cast the frozen rest, then select again (casting replaces parameters).
        CastParameters = TrainingMemoryPlan.CastFrozenUNet(UNet, options.FrozenWeightsDType, trainingStage, lora).Count;
        IReadOnlyList<(string Name, Parameter Parameter)> trainable = _concept is not null ? [("concept.embedding", _concept)]
            : lora ? _lora!.named_parameters().Select(p => (p.name, p.parameter)).ToArray()
            : StageParameters.Select(trainingStage, Named());
        _trainable = trainable.Select(p => p.Parameter).ToArray();
        _optimizer = StageOptimizer.Create(trainable, _settings, options);
        _store = new AttentionMapStore();
        _session = UNet.Attach(_store, AttentionTokenSelection.Positions(5, 6));
    }

    /// <summary>The U-Net (for facts about it).</summary>
    public UNet2DConditionModel UNet { get; }

    /// <summary>Elements of the trained parameters.</summary>
    public long TrainableElements => _trainable.Sum(p => p.numel());

    /// <summary>Bytes of the optimizer's moments (after a step).</summary>
    public long OptimizerStateBytes => _optimizer.StateBytes;

    /// <summary>How many U-Net parameters the frozen-precision rule cast.</summary>
    public int CastParameters { get; }

    /// <summary>Frozen U-Net parameters holding a gradient (must be 0).</summary>
    public int FrozenWithGradient => UNet.parameters().Count(p => !p.requires_grad && p.grad is not null);

    private IEnumerable<(string Name, Parameter Parameter)> Named() => UNet.named_parameters().Select(p => (p.name, p.parameter));

    /// <summary>One training step; <paramref name="afterBackward"/> runs between backward and the optimizer (to read the
    /// resident-set high-water mark there). Returns the seconds of forward + backward and of clipping + optimizer.</summary>
    public (double ForwardBackward, double Optimizer) Step(Action? afterBackward = null)
    {
        var clock = Stopwatch.StartNew();
        double forwardBackward;
        using (NewDisposeScope())
        {
            if (_keepGradients) foreach (var p in _trainable) p.grad?.zero_();
            var text = _concept is null ? _text : cat([_text[.., ..5], _concept.unsqueeze(0), _text[.., 7..]], 1);
            Loss(UNet, _store, _latents, _timestep, text, _target).backward();
            forwardBackward = clock.Elapsed.TotalSeconds;
            afterBackward?.Invoke();
            StageOptimizer.ClipGradients(_trainable, _settings);
            _optimizer.Step();
            if (!_keepGradients) _optimizer.ZeroGrad();
            _store.Clear();
        }
        return (forwardBackward, clock.Elapsed.TotalSeconds - forwardBackward);
    }

    /// <summary>The step's loss: the prediction's MSE plus a map loss over the two recorded tokens of every attn2 layer (a
    /// stand-in of the regularization's cost; its value is irrelevant). Clears nothing: the caller clears the store.</summary>
    public static Tensor Loss(UNet2DConditionModel unet, AttentionMapStore store, Tensor latents, Tensor timestep, Tensor text, Tensor target)
    {
        var prediction = unet.call(latents, timestep, text);
        var regularizer = zeros([]);
        foreach (var map in store.Maps)
        {
            var mean = map.Probabilities.mean([1L, 2L]);
            regularizer = regularizer + (mean[.., 0] - mean[.., 1]).pow(2).sum();
        }
        return nn.functional.mse_loss(prediction, target) + regularizer.mul(1e-2);
    }

    /// <summary>The repository root (the folder holding AttnDreamBooth.sln above the program).</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("Run the benchmarks from inside the repository (AttnDreamBooth.sln not found above " + AppContext.BaseDirectory + ").");
    }

    /// <summary>The SD 2.1-base U-Net config at real size.</summary>
    public static string RealSizeConfig() =>
        Path.Combine(RepoRoot(), "tests", "fixtures", "real-size", "stable-diffusion-2-1-base", "unet", "config.json");

    /// <summary>A field of /proc/self/status in KiB (0 off Linux).</summary>
    public static long StatusKiB(string field)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return 0;
    }

    public void Dispose()
    {
        _session.Dispose();
        _store.Dispose();
        _optimizer.Dispose();
        _lora?.Dispose();
        UNet.Dispose();
        _latents.Dispose();
        _target.Dispose();
        _timestep.Dispose();
        _text.Dispose();
        _concept?.Dispose();
    }
}
