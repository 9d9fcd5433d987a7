using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// How to read an original-layout (LDM / CompVis) single-file checkpoint, and what the file does not say about the
/// model it holds. Values set here win over the config folder's scheduler / U-Net configs, which win over the family
/// defaults where those are unambiguous (every SD 1.x release predicts epsilon at 512 px). SD 2.x files come both as
/// v-prediction at 768 px (2.0, 2.1) and as epsilon at 512 px (the -base models), so for them the prediction type must
/// be given (here or by a scheduler config); an SD 2.x image size then follows from it unless given.
/// </summary>
public sealed record SingleFileLoadOptions
{
    /// <summary>The diffusers prediction type name, <c>epsilon</c> or <c>v_prediction</c>, or null to take it from the
    /// config folder or the family.</summary>
    public string? PredictionType { get; init; }

    /// <summary>The native image size in pixels (512 for SD 1.x and 2.x-base, 768 for 2.x v-models), or null to take it
    /// from the config folder or the prediction type.</summary>
    public int? ImageSize { get; init; }

    /// <summary>The family, or null to detect it from the text-encoder prefix (<c>cond_stage_model.transformer.</c> = SD 1.x,
    /// <c>cond_stage_model.model.</c> = SD 2.x). Needed only for files without a text encoder; when given for a file
    /// that has one, it must agree with the detected family.</summary>
    internal StableDiffusionFamily? Family { get; init; }

    /// <summary>Read the U-Net from the EMA copy (<c>model_ema.*</c>) of a non-pruned training checkpoint instead of the
    /// plain weights. The file must hold an EMA value for every U-Net weight.</summary>
    public bool UseEmaWeights { get; init; }

    /// <summary>Further keys to skip without error (e.g. embedded extras of some community files). Keys no rule covers are
    /// otherwise an error, because they mean the configs do not describe the file.</summary>
    public Func<string, bool>? IgnoreKey { get; init; }

    /// <summary>Receives what was skipped (EMA copies, DDPM buffers, unused OpenCLIP tensors). Defaults to no logging.</summary>
    public ILogger? Logger { get; init; }
}
