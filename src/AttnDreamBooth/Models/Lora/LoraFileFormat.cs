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

/// <summary>Options for <see cref="LoraNetwork.Load"/>.</summary>
/// <param name="ReportUnknownKeys">False (the default): keys that match no layer of the given models are a
/// <see cref="IO.InvalidWeightsException"/> listing them. True: the rest is loaded and
/// <see cref="LoraNetwork.UnknownKeys"/> lists them.</param>
/// <param name="Scale">Initial runtime scale of every adapter.</param>
public sealed record LoraLoadOptions(bool ReportUnknownKeys = false, double Scale = 1.0);

/// <summary>What <see cref="LoraNetwork.Load"/> read.</summary>
/// <param name="FilePath">The file.</param>
/// <param name="Formats">The layouts its keys were in (a file may mix them).</param>
/// <param name="UNetModules">Number of U-Net layers that got an adapter.</param>
/// <param name="TextEncoderModules">Number of text-encoder layers that got an adapter.</param>
/// <param name="UnknownKeys">Keys that were not loaded, each with the reason (empty unless
/// <see cref="LoraLoadOptions.ReportUnknownKeys"/> was set).</param>
/// <param name="Metadata">The file's <c>__metadata__</c>.</param>
internal sealed record LoraLoadReport(string FilePath, IReadOnlySet<LoraFileFormat> Formats, int UNetModules, int TextEncoderModules,
    IReadOnlyDictionary<string, string> UnknownKeys, IReadOnlyDictionary<string, string> Metadata);
