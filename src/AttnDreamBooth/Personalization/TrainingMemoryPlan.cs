using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Applies a run's memory options for the duration of training and undoes them afterwards: gradient checkpointing
/// on the U-Net, half-precision frozen weights (the VAE throughout, the frozen U-Net layers in stages 1–2 and in a LoRA
/// stage 3), and
/// releasing the VAE once its latents are cached. Every cast or release is undone by reloading exact float32
/// weights from the base model, so the trained model carries no rounding of frozen weights.
/// </summary>
internal sealed class TrainingMemoryPlan : IDisposable
{
    private readonly StableDiffusionComponents _components;
    private readonly ScalarType? _dtype;
    private readonly bool _checkpointingBefore;
    private IReadOnlyList<string> _castUNet = [];
    private bool _vaeCast;
    private bool _vaeReleased;
    private readonly AutoencoderKLConfig _vaeConfig;

    public TrainingMemoryPlan(StableDiffusionComponents components, TrainingOptions options, bool releaseVae)
    {
        _components = components;
        _dtype = options.FrozenWeightsDType;
        _vaeConfig = components.Vae.Config;
        _checkpointingBefore = components.UNet.GradientCheckpointing;
        components.UNet.GradientCheckpointing = options.GradientCheckpointing;
        if (releaseVae)
        {
            components.Vae.Dispose();
            _vaeReleased = true;
        }
        else if (_dtype is { } dtype)
        {
            FrozenPrecision.Apply(components.Vae, dtype);
            _vaeCast = true;
        }
    }

    /// <summary>Before a stage selects its parameters: what the previous stage held in half precision may be trained
    /// now (stage 2 trains attention projections frozen in stage 1, stage 3 everything), so the U-Net returns to exact
    /// float32 first.</summary>
    public void BeforeStage(TrainingStage stage) => RestoreUNet();

    /// <summary>After a stage set requires_grad: holds the frozen U-Net layers in half precision for stages 1–2, and for a
    /// stage 3 that trains LoRA adapters (every U-Net weight is frozen then), except those <paramref name="keepFp32"/>
    /// names. Returns true when parameters were cast.</summary>
    public bool AfterSelection(TrainingStage stage, bool lora = false, Func<string, bool>? keepFp32 = null)
    {
        _castUNet = CastFrozenUNet(_components.UNet, _dtype, stage, lora, keepFp32);
        return _castUNet.Count > 0;
    }

    /// <summary>The rule <see cref="AfterSelection"/> applies, for callers that hold a bare U-Net (the training-memory
    /// benchmark): casts the U-Net's frozen layers to <paramref name="dtype"/> in stages 1–2 and in a LoRA stage 3, after
    /// requires_grad was set; a full stage 3 or a null dtype casts nothing. Returns the cast parameters' names.</summary>
    internal static IReadOnlyList<string> CastFrozenUNet(UNet2DConditionModel unet, ScalarType? dtype, TrainingStage stage, bool lora,
        Func<string, bool>? keepFp32 = null)
    {
        ArgumentNullException.ThrowIfNull(unet);
        if (dtype is not { } d || (stage == TrainingStage.UNet && !lora)) return [];
        return FrozenPrecision.Apply(unet, d, keepFp32).Cast;
    }

    private void RestoreUNet()
    {
        if (_castUNet.Count == 0) return;
        FrozenPrecision.ConvertReleasing(_components.UNet, float32);
        // From the source the pipeline was really built from (a single file's config folder holds no such weights).
        _components.Weights.Restore(_components.UNet, "unet", _castUNet);
        _castUNet = [];
    }

    public void Dispose()
    {
        _components.UNet.GradientCheckpointing = _checkpointingBefore;
        RestoreUNet();
        if (_vaeReleased || _vaeCast)
        {
            var device = _components.Device;
            if (_vaeCast) _components.Vae.Dispose();
            var vae = new AutoencoderKL(_vaeConfig, device);
            _components.Weights.Load(vae, "vae", new StateDictLoadOptions { KeyMap = VaeWeightNames.ToCurrentName });
            vae.eval();
            foreach (var p in vae.parameters()) p.requires_grad = false;
            _components.Vae = vae;
            _vaeCast = _vaeReleased = false;
        }
    }
}
