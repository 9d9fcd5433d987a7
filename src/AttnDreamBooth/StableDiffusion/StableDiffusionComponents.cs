using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// The building blocks of a Stable Diffusion 1.x/2.x pipeline loaded from a diffusers folder (<see cref="Load"/>) or an
/// original-layout single file (<see cref="LoadSingleFile"/>): tokenizer, text encoder, U-Net, VAE and the scheduler
/// configuration, all on one device.
/// </summary>
public sealed class StableDiffusionComponents : IDisposable
{
    private readonly int? _resolution;

    private StableDiffusionComponents(DiffusersFolder folder, string modelSource, torch.Device device, ClipTokenizer tokenizer, ClipTextModel textEncoder,
        UNet2DConditionModel unet, AutoencoderKL vae, SchedulerConfig schedulerConfig, int? resolution, ComponentWeightOrigin weights, ResourceLimits limits)
    {
        ResourceLimits = limits;
        Folder = folder;
        Weights = weights;
        ModelSource = modelSource;
        _resolution = resolution;
        Device = device;
        Tokenizer = tokenizer;
        TextEncoder = textEncoder;
        UNet = unet;
        Vae = vae;
        SchedulerConfig = schedulerConfig;
    }

    /// <summary>The model folder: the weights' folder, or for a single file the folder its configs, tokenizer and scheduler came from.</summary>
    internal DiffusersFolder Folder { get; }

    /// <summary>Where the weights came from: the diffusers folder, or the single-file checkpoint.</summary>
    public string ModelSource { get; }

    /// <summary>Where the networks' weights really came from (the folder or the single file); exact weights are reloaded from here.</summary>
    internal ComponentWeightOrigin Weights { get; }

    /// <summary>The bounds the components were loaded with; <see cref="LoadLora"/> and a pipeline built on them apply them too.</summary>
    public ResourceLimits ResourceLimits { get; }

    /// <summary>Where every module lives.</summary>
    public torch.Device Device { get; }

    /// <summary>The CLIP tokenizer (concept tokens are added to it).</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>The CLIP text encoder (frozen). Training may release and reload its weights, in the same parameter objects
    /// (<c>TrainingOptions.ReleaseTextEncoderDuringTraining</c>).</summary>
    public ClipTextModel TextEncoder { get; }

    /// <summary>The denoising U-Net.</summary>
    public UNet2DConditionModel UNet { get; }

    /// <summary>The VAE (frozen). Training may release and reload its weights, in the same module
    /// (<c>TrainingOptions.ReleaseVaeDuringTraining</c>).</summary>
    public AutoencoderKL Vae { get; }

    /// <summary>The scheduler configuration; training and samplers are built from it.</summary>
    public SchedulerConfig SchedulerConfig { get; }

    /// <summary>The model's native image size in pixels (U-Net sample size × VAE factor, or the resolved
    /// <see cref="SingleFileLoadOptions.ImageSize"/> of a single file).</summary>
    public int DefaultResolution => _resolution ?? (UNet.Config.SampleSize ?? Vae.Config.SampleSize / Vae.DownsampleFactor) * Vae.DownsampleFactor;

    /// <summary>
    /// Reads a LoRA file (kohya/A1111 or diffusers) onto the U-Net and the text encoder, installs it at
    /// <paramref name="scale"/> and returns the network (change the strength with <see cref="LoraNetwork.SetScale(double)"/>,
    /// bake it in with <see cref="LoraNetwork.Merge"/>, take it out with <see cref="LoraNetwork.Remove"/> or by disposing it).
    /// </summary>
    /// <exception cref="IO.InvalidWeightsException">The file has keys that match no layer (unless
    /// <see cref="LoraLoadOptions.ReportUnknownKeys"/> is set), incomplete modules or wrong shapes.</exception>
    public LoraNetwork LoadLora(string loraPath, double scale = 1.0, LoraLoadOptions? options = null)
    {
        LoraNetwork network;
        using (ResourceLimits.Use(ResourceLimits)) network = LoraNetwork.Load(loraPath, UNet, TextEncoder, (options ?? new LoraLoadOptions()) with { Scale = scale });
        try
        {
            network.Install();
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return network;
    }

    /// <summary>Loads every component of a diffusers folder (or Hugging Face cache entry) strictly onto <paramref name="device"/>.</summary>
    /// <exception cref="ModelConfigException">The folder, a config or a weight file is missing or invalid.</exception>
    /// <exception cref="InvalidWeightsException">Weights do not match the modules built from the configs.</exception>
    /// <exception cref="InvalidWeightsException">A weight holds NaN or infinity.</exception>
    /// <remarks>Configs, tokenizer files and weights are checked against <paramref name="limits"/> (default
    /// <see cref="ResourceLimits.Default"/>) before anything is allocated.</remarks>
    public static StableDiffusionComponents Load(string modelFolder, torch.Device? device = null, ResourceLimits? limits = null,
        ILoggerFactory? loggerFactory = null, CancellationToken ct = default) =>
        LoadFolder(modelFolder, device, loggerFactory, checkFiniteWeights: true, limits ?? ResourceLimits.Default, ct);

    internal static StableDiffusionComponents LoadFolder(string modelFolder, torch.Device? device, ILoggerFactory? loggerFactory, bool checkFiniteWeights,
        ResourceLimits limits, CancellationToken ct) =>
        TensorRoots.Run(() => LoadFolderRooted(modelFolder, device, loggerFactory, checkFiniteWeights, limits, ct));

    private static StableDiffusionComponents LoadFolderRooted(string modelFolder, torch.Device? device, ILoggerFactory? loggerFactory, bool checkFiniteWeights,
        ResourceLimits limits, CancellationToken ct)
    {
        using var scope = ResourceLimits.Use(limits);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<StableDiffusionComponents>();
        device ??= torch.CPU;
        var folder = DiffusersFolder.Open(modelFolder);
        var tokenizer = ClipTokenizer.FromFolder(folder.ComponentPath("tokenizer"));
        ct.ThrowIfCancellationRequested();

        var textEncoder = ClipTextModel.FromFolder(folder.ComponentPath("text_encoder"), device, checkFiniteWeights: checkFiniteWeights);
        Log(logger, "text_encoder", folder.ComponentPath("text_encoder"), textEncoder);
        ct.ThrowIfCancellationRequested();

        var unet = new UNet2DConditionModel(UNetConfig.Load(folder.ConfigPath("unet")), device);
        StateDictLoader.LoadComponent(unet, folder.ComponentPath("unet"), options: new StateDictLoadOptions { CheckFinite = checkFiniteWeights });
        Log(logger, "unet", folder.ComponentPath("unet"), unet);
        ct.ThrowIfCancellationRequested();

        var vae = AutoencoderKL.FromFolder(folder.ComponentPath("vae"), device, checkFiniteWeights: checkFiniteWeights);
        Log(logger, "vae", folder.ComponentPath("vae"), vae);

        var scheduler = SchedulerConfig.Load(folder.ConfigPath("scheduler"));
        Freeze(textEncoder, unet, vae);
        return new StableDiffusionComponents(folder, folder.Root, device, tokenizer, textEncoder, unet, vae, scheduler, resolution: null, ComponentWeightOrigin.FromFolder(folder), limits);
    }

    /// <summary>
    /// Loads the networks from an original-layout (LDM / CompVis) single-file checkpoint of SD 1.x or 2.x through the
    /// generated key map (<see cref="SingleFileCheckpoint"/>), with everything the file does not hold from
    /// <paramref name="configFolder"/>: the architecture (U-Net, VAE, text-encoder configs), the tokenizer and the scheduler
    /// config. The prediction type and the native image size are resolved as <see cref="SingleFileLoadOptions"/>
    /// describes (<paramref name="options"/> win, then the config folder, then the SD 1.x defaults); the scheduler
    /// config is given the resolved prediction type.
    /// </summary>
    /// <param name="checkpointPath">The <c>.safetensors</c> file (pickles are refused).</param>
    /// <param name="configFolder">A diffusers folder of the same model family; its weights are not read and need not exist.</param>
    /// <param name="device">Where every module lives (CPU by default).</param>
    /// <param name="options">Prediction type and image size when the config folder should not decide them, EMA weights,
    /// keys to ignore (the logger defaults to <paramref name="loggerFactory"/>'s).</param>
    /// <param name="limits">Bounds on what the file and the configs may allocate (default <see cref="ResourceLimits.Default"/>).</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="ct">Checked between components.</param>
    /// <exception cref="InvalidWeightsException">The file is a pickle.</exception>
    /// <exception cref="InvalidWeightsException">The file does not fit the configs, lacks a component, or its settings are ambiguous.</exception>
    /// <exception cref="ModelConfigException">The config folder is incomplete.</exception>
    /// <exception cref="InvalidWeightsException">A weight holds NaN or infinity.</exception>
    public static StableDiffusionComponents LoadSingleFile(string checkpointPath, string configFolder, torch.Device? device = null,
        SingleFileLoadOptions? options = null, ResourceLimits? limits = null, ILoggerFactory? loggerFactory = null, CancellationToken ct = default) =>
        LoadSingleFileChecked(checkpointPath, configFolder, device, options, loggerFactory, checkFiniteWeights: true, limits ?? ResourceLimits.Default, ct);

    internal static StableDiffusionComponents LoadSingleFileChecked(string checkpointPath, string configFolder, torch.Device? device,
        SingleFileLoadOptions? options, ILoggerFactory? loggerFactory, bool checkFiniteWeights, ResourceLimits limits, CancellationToken ct) =>
        TensorRoots.Run(() => LoadSingleFileRooted(checkpointPath, configFolder, device, options, loggerFactory, checkFiniteWeights, limits, ct));

    private static StableDiffusionComponents LoadSingleFileRooted(string checkpointPath, string configFolder, torch.Device? device,
        SingleFileLoadOptions? options, ILoggerFactory? loggerFactory, bool checkFiniteWeights, ResourceLimits limits, CancellationToken ct)
    {
        using var scope = ResourceLimits.Use(limits);
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(configFolder);
        loggerFactory ??= NullLoggerFactory.Instance;
        var logger = loggerFactory.CreateLogger<StableDiffusionComponents>();
        device ??= torch.CPU;
        var folder = DiffusersFolder.Open(configFolder);
        options ??= new SingleFileLoadOptions();
        if (options.Logger is null) options = options with { Logger = loggerFactory.CreateLogger<SingleFileCheckpoint>() };
        string path = Path.GetFullPath(checkpointPath);
        var architecture = SingleFileArchitecture.FromFolder(folder.Root);
        using var checkpoint = SingleFileCheckpoint.Open(path, architecture, options);
        var missing = SingleFileComponents.All.Except(checkpoint.Components).ToArray();
        if (missing.Length > 0) throw InvalidWeightsException.SingleFile(path, $"holds no {string.Join(", ", missing)}; a pipeline needs the U-Net, the VAE and the text encoder");
        var resolved = SingleFileModelSettings.From(options).Resolve(checkpoint.Family, folder.Root);
        var tokenizer = ClipTokenizer.FromFolder(folder.ComponentPath("tokenizer"));
        var modules = new List<torch.nn.Module>();
        try
        {
            ct.ThrowIfCancellationRequested();
            var textEncoder = new ClipTextModel(ClipTextConfig.Load(folder.ConfigPath("text_encoder")), device);
            modules.Add(textEncoder);
            StateDictLoader.Load(textEncoder, checkpoint.OpenComponent(SingleFileComponents.TextEncoder),
                new StateDictLoadOptions { KeyMap = k => ClipTextModel.IsIgnorableKey(k) ? null : k, CheckFinite = checkFiniteWeights });
            Log(logger, "text_encoder", path, textEncoder);
            ct.ThrowIfCancellationRequested();

            var unet = new UNet2DConditionModel(UNetConfig.Load(folder.ConfigPath("unet")), device);
            modules.Add(unet);
            StateDictLoader.Load(unet, checkpoint.OpenComponent(SingleFileComponents.UNet), new StateDictLoadOptions { CheckFinite = checkFiniteWeights });
            Log(logger, "unet", path, unet);
            ct.ThrowIfCancellationRequested();

            var vae = new AutoencoderKL(AutoencoderKLConfig.Load(folder.ConfigPath("vae")), device);
            modules.Add(vae);
            StateDictLoader.Load(vae, checkpoint.OpenComponent(SingleFileComponents.Vae), new StateDictLoadOptions { KeyMap = VaeWeightNames.ToCurrentName, CheckFinite = checkFiniteWeights });
            Log(logger, "vae", path, vae);

            var scheduler = SchedulerConfig.Load(folder.ConfigPath("scheduler"))
                .With(new Dictionary<string, object?> { ["prediction_type"] = resolved.PredictionType });
            Freeze(textEncoder, unet, vae);
            return new StableDiffusionComponents(folder, path, device, tokenizer, textEncoder, unet, vae, scheduler, resolved.ImageSize,
                ComponentWeightOrigin.FromSingleFile(path, architecture, options), limits);
        }
        catch
        {
            foreach (var module in modules) module.Dispose();
            throw;
        }
    }

    /// <summary>Holds the text encoder, U-Net and VAE in <paramref name="dtype"/> for inference.</summary>
    internal void ConvertTo(torch.ScalarType dtype)
    {
        TextEncoder.to(dtype);
        UNet.to(dtype);
        Vae.to(dtype);
    }

    private static void Freeze(ClipTextModel textEncoder, UNet2DConditionModel unet, AutoencoderKL vae)
    {
        foreach (var module in new torch.nn.Module[] { textEncoder, vae })
        {
            module.eval();
            foreach (var p in module.parameters()) p.requires_grad = false;
        }
        foreach (var p in unet.parameters()) p.requires_grad = false;
    }

    private static void Log(ILogger logger, string component, string path, torch.nn.Module module) =>
        PipelineLog.ComponentLoaded(logger, component, path, module.parameters().Sum(p => p.NumberOfElements));

    /// <inheritdoc />
    public void Dispose()
    {
        TextEncoder.Dispose();
        UNet.Dispose();
        Vae.Dispose();
    }
}
