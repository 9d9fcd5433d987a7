using AttnDreamBooth.IO;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Text;
using AttnDreamBooth.UNet;
using AttnDreamBooth.Vae;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace AttnDreamBooth.Pipelines;

/// <summary>
/// The building blocks of a Stable Diffusion 1.x/2.x pipeline loaded from a diffusers folder: tokenizer, text
/// encoder, U-Net, VAE and the scheduler configuration, all on one device.
/// </summary>
public sealed class StableDiffusionComponents : IDisposable
{
    private StableDiffusionComponents(DiffusersFolder folder, torch.Device device, ClipTokenizer tokenizer, ClipTextModel textEncoder,
        UNet2DConditionModel unet, AutoencoderKL vae, SchedulerConfig schedulerConfig)
    {
        Folder = folder;
        Device = device;
        Tokenizer = tokenizer;
        TextEncoder = textEncoder;
        UNet = unet;
        Vae = vae;
        SchedulerConfig = schedulerConfig;
    }

    /// <summary>The model folder.</summary>
    public DiffusersFolder Folder { get; }

    /// <summary>Where every module lives.</summary>
    public torch.Device Device { get; }

    /// <summary>The CLIP tokenizer (concept tokens are added to it).</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>The CLIP text encoder (frozen).</summary>
    public ClipTextModel TextEncoder { get; }

    /// <summary>The denoising U-Net.</summary>
    public UNet2DConditionModel UNet { get; }

    /// <summary>The VAE (frozen). Training may release and reload it (<c>TrainingOptions.ReleaseVaeDuringTraining</c>).</summary>
    public AutoencoderKL Vae { get; internal set; }

    /// <summary>The scheduler configuration; training and samplers are built from it.</summary>
    public SchedulerConfig SchedulerConfig { get; }

    /// <summary>The model's native image size in pixels (U-Net sample size × VAE factor).</summary>
    public int DefaultResolution => (UNet.Config.SampleSize ?? Vae.Config.SampleSize / Vae.DownsampleFactor) * Vae.DownsampleFactor;

    /// <summary>Loads every component of a diffusers folder (or Hugging Face cache entry) strictly onto <paramref name="device"/>.</summary>
    /// <exception cref="ModelConfigException">The folder, a config or a weight file is missing or invalid.</exception>
    /// <exception cref="StateDictMismatchException">Weights do not match the modules built from the configs.</exception>
    public static StableDiffusionComponents Load(string modelFolder, torch.Device? device = null, ILoggerFactory? loggerFactory = null, CancellationToken ct = default)
    {
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<StableDiffusionComponents>();
        device ??= torch.CPU;
        var folder = DiffusersFolder.Open(modelFolder);
        var tokenizer = ClipTokenizer.FromFolder(folder.ComponentPath("tokenizer"));
        ct.ThrowIfCancellationRequested();

        var textEncoder = ClipTextModel.FromFolder(folder.ComponentPath("text_encoder"), device);
        Log(logger, "text_encoder", folder.ComponentPath("text_encoder"), textEncoder);
        ct.ThrowIfCancellationRequested();

        var unet = new UNet2DConditionModel(UNetConfig.Load(folder.ConfigPath("unet")), device);
        StateDictLoader.LoadComponent(unet, folder.ComponentPath("unet"));
        Log(logger, "unet", folder.ComponentPath("unet"), unet);
        ct.ThrowIfCancellationRequested();

        var vae = AutoencoderKL.FromFolder(folder.ComponentPath("vae"), device);
        Log(logger, "vae", folder.ComponentPath("vae"), vae);

        var scheduler = SchedulerConfig.Load(folder.ConfigPath("scheduler"));
        foreach (var module in new torch.nn.Module[] { textEncoder, vae })
        {
            module.eval();
            foreach (var p in module.parameters()) p.requires_grad = false;
        }
        foreach (var p in unet.parameters()) p.requires_grad = false;
        return new StableDiffusionComponents(folder, device, tokenizer, textEncoder, unet, vae, scheduler);
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
