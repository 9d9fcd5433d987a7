using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.IO.SingleFile;

/// <summary>Options for <see cref="SingleFileCheckpoint.Open"/>.</summary>
public sealed record SingleFileLoadOptions
{
    /// <summary>The family, or null to detect it from the text-encoder prefix (<c>cond_stage_model.transformer.</c> = SD 1.x,
    /// <c>cond_stage_model.model.</c> = SD 2.x). Needed only for files without a text encoder; when given for a file
    /// that has one, it must agree with the detected family.</summary>
    public StableDiffusionFamily? Family { get; init; }

    /// <summary>Read the U-Net from the EMA copy (<c>model_ema.*</c>) of a non-pruned training checkpoint instead of the
    /// plain weights. The file must hold an EMA value for every U-Net weight.</summary>
    public bool UseEmaWeights { get; init; }

    /// <summary>Further keys to skip without error (e.g. embedded extras of some community files). Keys no rule covers are
    /// otherwise an error, because they mean the configs do not describe the file.</summary>
    public Func<string, bool>? IgnoreKey { get; init; }

    /// <summary>Receives what was skipped (EMA copies, DDPM buffers, unused OpenCLIP tensors). Defaults to no logging.</summary>
    public ILogger? Logger { get; init; }
}
