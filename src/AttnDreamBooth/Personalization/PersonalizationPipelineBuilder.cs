using AttnDreamBooth.IO;
using AttnDreamBooth.StableDiffusion;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>Fluent configuration of a <see cref="PersonalizationPipeline"/>. Obtain one with
/// <see cref="PersonalizationPipeline.FromPretrained"/> or <see cref="PersonalizationPipeline.FromSingleFile"/>.</summary>
public sealed class PersonalizationPipelineBuilder
{
    private readonly Func<torch.Device, ILoggerFactory, bool, ResourceLimits, CancellationToken, StableDiffusionComponents> _load;
    private bool _checkFiniteWeights = true;
    private ResourceLimits _limits = ResourceLimits.Default;
    private torch.Device _device = torch.CPU;
    private StagePlan _plan = StagePlan.Paper;
    private TrainingOptions _training = new();
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;
    private torch.ScalarType _dtype = torch.ScalarType.Float32;

    internal PersonalizationPipelineBuilder(string modelFolder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFolder);
        _load = (device, loggers, checkFinite, limits, ct) => StableDiffusionComponents.LoadFolder(modelFolder, device, loggers, checkFinite, limits, ct);
    }

    internal PersonalizationPipelineBuilder(Func<torch.Device, ILoggerFactory, bool, ResourceLimits, CancellationToken, StableDiffusionComponents> load) => _load = load;

    /// <summary>The bounds on what untrusted files may make the pipeline allocate or read (default
    /// <see cref="ResourceLimits.Default"/>): the model's configs and weights when it is built, then everything the pipeline
    /// reads later (concept photos, class images, checkpoints, saved and imported concepts, LoRA files).</summary>
    /// <example><c>.WithResourceLimits(ResourceLimits.Default with { MaxImagePixels = 200_000_000 })</c></example>
    public PersonalizationPipelineBuilder WithResourceLimits(ResourceLimits limits)
    {
        _limits = limits ?? throw new ArgumentNullException(nameof(limits));
        return this;
    }

    /// <summary>Whether every weight tensor of the base model is checked for NaN and infinity when it is loaded
    /// (default true; one <c>isfinite().all()</c> per tensor). Turn it off only for files you trust.</summary>
    public PersonalizationPipelineBuilder WithFiniteWeightCheck(bool enabled)
    {
        _checkFiniteWeights = enabled;
        return this;
    }

    /// <summary>Places every module on <paramref name="device"/> (e.g. <c>torch.CUDA</c>).</summary>
    public PersonalizationPipelineBuilder OnDevice(torch.Device device)
    {
        _device = device ?? throw new ArgumentNullException(nameof(device));
        return this;
    }

    /// <summary>Places every module on the named device ("cpu", "cuda", "cuda:1").</summary>
    /// <exception cref="InvalidOperationException">CUDA was requested but no CUDA runtime is available.</exception>
    public PersonalizationPipelineBuilder OnDevice(string device)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(device);
        var parsed = new torch.Device(device);
        if (parsed.type == DeviceType.CUDA && !torch.cuda.is_available())
            throw new InvalidOperationException($"Device '{device}' was requested, but no CUDA runtime is available to TorchSharp. Reference a CUDA libtorch package (instead of TorchSharp-cpu) and install the NVIDIA driver, or use \"cpu\".");
        return OnDevice(parsed);
    }

    /// <summary>Holds the text encoder, U-Net and VAE in <paramref name="dtype"/> (diffusers' <c>torch_dtype</c>) for
    /// inference: <c>BFloat16</c> on the CPU or a GPU, <c>Float16</c> on a GPU, halving the weights' memory. Latents and
    /// the sampler stay float32; images differ from float32 ones by a few grey levels (docs/getting-started.md). A pipeline
    /// built so cannot train (train in float32; <see cref="TrainingOptions.FrozenWeightsDType"/> saves memory there).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not Float32, Float16 or BFloat16.</exception>
    public PersonalizationPipelineBuilder WithDType(torch.ScalarType dtype)
    {
        if (dtype is not (torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "The pipeline runs in Float32, Float16 or BFloat16.");
        _dtype = dtype;
        return this;
    }

    /// <summary>The stage plan (default <see cref="StagePlan.Paper"/>).</summary>
    public PersonalizationPipelineBuilder WithStages(StagePlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        plan.Validate();
        _plan = plan;
        return this;
    }

    /// <summary>The preset plan of <paramref name="method"/> (<see cref="StagePlan.For(PersonalizationMethod)"/>).</summary>
    public PersonalizationPipelineBuilder WithMethod(PersonalizationMethod method) => WithStages(StagePlan.For(method));

    /// <summary>Caches the prior-preservation class images in <paramref name="directory"/>, reused by later runs with
    /// the same settings (<see cref="TrainingOptions.ClassImageDirectory"/>).</summary>
    public PersonalizationPipelineBuilder WithClassImages(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _training = _training with { ClassImageDirectory = directory };
        return this;
    }

    /// <summary>The seed of every random stream of training.</summary>
    public PersonalizationPipelineBuilder WithSeed(long seed)
    {
        _training = _training with { Seed = seed };
        return this;
    }

    /// <summary>Writes resumable checkpoints to <paramref name="directory"/> (interval from the plan).</summary>
    public PersonalizationPipelineBuilder WithCheckpoints(string directory, int keep = 2)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _training = _training with { CheckpointDirectory = directory, KeepCheckpoints = keep };
        return this;
    }

    /// <summary>Continues training from a checkpoint folder (or the newest checkpoint in a folder of them).
    /// The concept, plan, seed and base model must be those of the interrupted run.</summary>
    public PersonalizationPipelineBuilder ResumeFrom(string checkpoint)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpoint);
        _training = _training with { ResumeFrom = checkpoint };
        return this;
    }

    /// <summary>Replaces the run-level training options wholesale.</summary>
    public PersonalizationPipelineBuilder WithTrainingOptions(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _training = options;
        return this;
    }

    /// <summary>Logs through <paramref name="loggerFactory"/> (default: no logging).</summary>
    public PersonalizationPipelineBuilder WithLogger(ILoggerFactory loggerFactory)
    {
        _loggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        return this;
    }

    /// <summary>Loads the model and returns the pipeline.</summary>
    public PersonalizationPipeline Build(CancellationToken ct = default)
    {
        _training.Validate();
        StableDiffusionPipeline.CheckDType(_dtype, _device);
        return TensorRoots.Run(() =>
        {
            var components = _load(_device, _loggerFactory, _checkFiniteWeights, _limits, ct);
            if (_dtype != torch.ScalarType.Float32) components.ConvertTo(_dtype);
            return new PersonalizationPipeline(components, _plan, _training, _loggerFactory);
        });
    }

    /// <summary>Loads the model on a worker thread and returns the pipeline.</summary>
    public Task<PersonalizationPipeline> BuildAsync(CancellationToken ct = default) =>
        Task.Factory.StartNew(() => Build(ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
