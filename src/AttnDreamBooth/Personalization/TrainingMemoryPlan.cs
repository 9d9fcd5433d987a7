using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Applies a run's memory and layout options for the duration of training and undoes them afterwards: gradient
/// checkpointing and channels-last convolution weights on the U-Net, half-precision frozen weights (the VAE throughout,
/// the frozen U-Net layers in stages 1–2 and in a LoRA stage 3), releasing the VAE once its latents are cached, and
/// releasing the text encoder once the conditioning of the remaining stages is computed. Every cast or release is undone by reloading exact float32 weights from the base model,
/// so the trained model carries no rounding of frozen weights.
/// </summary>
/// <remarks>A released component keeps its module and parameter objects (each parameter's storage is swapped for an empty
/// one and reallocated before the reload), so references held by callers, the concept embedding or the latent cache stay
/// valid. Weights changed in memory before training (a merged LoRA) are not what comes back: the base model's are.</remarks>
internal sealed class TrainingMemoryPlan : IDisposable
{
    private readonly StableDiffusionComponents _components;
    private readonly ScalarType? _dtype;
    private readonly bool _checkpointingBefore;
    private IReadOnlyList<string> _castUNet = [];
    private bool _vaeCast;
    private ReleasedWeights? _vaeReleased;
    private ReleasedWeights? _textEncoderReleased;

    private static readonly StateDictLoadOptions VaeLoad = new() { KeyMap = VaeWeightNames.ToCurrentName };
    private static readonly StateDictLoadOptions TextEncoderLoad = new() { KeyMap = k => ClipTextModel.IsIgnorableKey(k) ? null : k };

    public TrainingMemoryPlan(StableDiffusionComponents components, TrainingOptions options, bool releaseVae)
    {
        _components = components;
        _dtype = options.FrozenWeightsDType;
        if (releaseVae)
        {
            _vaeReleased = Release(components.Vae, SingleFileComponents.Vae, VaeLoad);
        }
        else if (_dtype is { } dtype)
        {
            FrozenPrecision.Apply(components.Vae, dtype);
            _vaeCast = true;
        }
        _checkpointingBefore = components.UNet.GradientCheckpointing;
        components.UNet.GradientCheckpointing = options.GradientCheckpointing;
        // Before any stage: gradients and optimizer moments are then allocated in the same layout as their weights.
        if (options.ChannelsLast) ChannelsLastWeights = ChannelsLastLayout.Apply(components.UNet);
    }

    /// <summary>How many U-Net convolution weights were laid out channels-last until <see cref="Dispose"/>.</summary>
    public int ChannelsLastWeights { get; }

    /// <summary>Whether the VAE's weights are released until <see cref="Dispose"/>.</summary>
    public bool VaeReleased => _vaeReleased is not null;

    /// <summary>Frees the text encoder's weights until <see cref="Dispose"/>; the caller has computed every conditioning the
    /// rest of the run needs (nothing may call the encoder until then). Returns false when they were released already.</summary>
    public bool ReleaseTextEncoder()
    {
        if (_textEncoderReleased is not null) return false;
        _textEncoderReleased = Release(_components.TextEncoder, SingleFileComponents.TextEncoder, TextEncoderLoad);
        return true;
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

    /// <summary>A frozen component whose weights were freed in place, and what reloading them needs.</summary>
    private sealed record ReleasedWeights(nn.Module Module, string Component, StateDictLoadOptions Load, IReadOnlyList<(Parameter Parameter, long[] Shape)> Shapes);

    /// <summary>Frees <paramref name="module"/>'s parameters in place (each keeps its object, dtype and requires_grad; its
    /// storage becomes empty). Checks first that the base model can give every one of them back.</summary>
    private ReleasedWeights Release(nn.Module module, string component, StateDictLoadOptions load)
    {
        _components.Weights.Validate(module, component, load);
        var shapes = module.parameters().Select(p => (p, p.shape)).ToArray();
        using var _ = no_grad();
        foreach (var (p, _) in shapes)
        {
            using var nothing = empty(0, dtype: p.dtype, device: p.device);
            p.set_(nothing);
        }
        return new ReleasedWeights(module, component, load, shapes);
    }

    /// <summary>Exact float32 weights back from the base model, into the same module: a released one gets its parameters'
    /// storage back (the same parameter objects), a cast one is converted to float32 first.</summary>
    private void Reload(nn.Module module, string component, StateDictLoadOptions load, ReleasedWeights? released)
    {
        if (released is not null)
        {
            using var _ = no_grad();
            foreach (var (p, shape) in released.Shapes)
            {
                using var storage = empty(shape, dtype: p.dtype, device: p.device);
                p.set_(storage);
            }
        }
        else
        {
            FrozenPrecision.ConvertReleasing(module, float32);
            foreach (var p in module.parameters()) p.requires_grad = false;
        }
        _components.Weights.Load(module, component, load);
    }

    public void Dispose()
    {
        _components.UNet.GradientCheckpointing = _checkpointingBefore;
        if (ChannelsLastWeights > 0) ChannelsLastLayout.Undo(_components.UNet);
        try
        {
            RestoreUNet();
            if (_vaeReleased is not null || _vaeCast)
            {
                var released = _vaeReleased;
                _vaeCast = false;
                _vaeReleased = null;
                Reload(_components.Vae, SingleFileComponents.Vae, VaeLoad, released);
            }
        }
        finally
        {
            if (_textEncoderReleased is { } text)
            {
                _textEncoderReleased = null;
                Reload(text.Module, text.Component, text.Load, text);
            }
        }
    }
}
