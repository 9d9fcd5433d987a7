namespace AttnDreamBooth.Models.Lora;

/// <summary>On-disk LoRA layouts.</summary>
public enum LoraFileFormat
{
    /// <summary>kohya-ss / A1111 / ComfyUI: <c>lora_unet_&lt;path with _&gt;.lora_down.weight</c>, <c>.lora_up.weight</c>,
    /// <c>.alpha</c> (0-dim); <c>lora_te_…</c> for the text encoder.</summary>
    Kohya,

    /// <summary>diffusers 0.24: <c>unet.&lt;path&gt;.lora.down.weight</c> / <c>.lora.up.weight</c> and
    /// <c>text_encoder.&lt;path&gt;.lora_linear_layer.down.weight</c> / <c>.up.weight</c>, no alpha (written with alpha/r
    /// folded into <c>up</c>). Reading also accepts the PEFT spelling <c>.lora_A.weight</c> / <c>.lora_B.weight</c>
    /// with optional <c>&lt;path&gt;.alpha</c>.</summary>
    Diffusers,
}

/// <summary>What to do with keys of a LoRA file that name nothing the models have.</summary>
public enum LoraUnknownKeys
{
    /// <summary>Throw a <see cref="LoraException"/> listing them (default).</summary>
    Throw,

    /// <summary>Load the rest and list them in <see cref="LoraLoadReport.UnknownKeys"/>.</summary>
    Report,
}

/// <summary>Options for <see cref="LoraFile.Load"/>.</summary>
/// <param name="UnknownKeys">What to do with keys that match no layer of the given models.</param>
/// <param name="Scale">Initial runtime scale of every adapter.</param>
public sealed record LoraLoadOptions(LoraUnknownKeys UnknownKeys = LoraUnknownKeys.Throw, double Scale = 1.0);

/// <summary>A key of a LoRA file that was not loaded, and why.</summary>
/// <param name="Key">The tensor name in the file.</param>
/// <param name="Reason">Why it was not loaded.</param>
public sealed record LoraUnknownKey(string Key, string Reason);

/// <summary>What <see cref="LoraFile.Load"/> read.</summary>
/// <param name="FilePath">The file.</param>
/// <param name="Formats">The layouts its keys were in (a file may mix them).</param>
/// <param name="UNetModules">Number of U-Net layers that got an adapter.</param>
/// <param name="TextEncoderModules">Number of text-encoder layers that got an adapter.</param>
/// <param name="UnknownKeys">Keys that were not loaded (empty unless <see cref="LoraUnknownKeys.Report"/> was chosen).</param>
/// <param name="Metadata">The file's <c>__metadata__</c>.</param>
public sealed record LoraLoadReport(string FilePath, IReadOnlySet<LoraFileFormat> Formats, int UNetModules, int TextEncoderModules,
    IReadOnlyList<LoraUnknownKey> UnknownKeys, IReadOnlyDictionary<string, string> Metadata);
