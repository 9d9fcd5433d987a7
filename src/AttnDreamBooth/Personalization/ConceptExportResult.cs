using AttnDreamBooth.Models.Lora;

namespace AttnDreamBooth.Personalization;

/// <summary>What <see cref="PersonalizedModel.ExportAsync"/> wrote.</summary>
/// <param name="Folder">The export folder (absolute).</param>
/// <param name="Format">The format.</param>
/// <param name="TriggerWord">The word prompts use (the embedding file's name for A1111/ComfyUI).</param>
/// <param name="Files">Every file written and its size in bytes, by path relative to <paramref name="Folder"/> with <c>/</c>
/// separators (enumerated in ordinal path order).</param>
/// <param name="BaseModelName">The base model the export needs (or, for the diffusers format, contains), by a portable
/// name: the Hugging Face repository of a cache entry (<c>stabilityai/stable-diffusion-2-1-base</c>), a folder's name
/// (<c>sd15</c>) or a single file's name.</param>
/// <param name="BaseModelFingerprint"><c>sha256:</c> + the SHA-256 of the lines "<c>&lt;file sha256&gt;  &lt;path&gt;</c>"
/// of the base model's weight files, sorted by path: one value that changes when any weight does (the export's metadata
/// lists each file and its SHA-256, so anyone can check theirs with <c>sha256sum</c>).</param>
public sealed record ConceptExportResult(string Folder, ConceptExportFormat Format, string TriggerWord, IReadOnlyDictionary<string, long> Files,
    string BaseModelName, string BaseModelFingerprint)
{
    /// <summary>For a LoRA export: what the LoRA holds and what it cannot; null otherwise.</summary>
    public LoraExportReport? Lora { get; init; }

    /// <summary>The total size of the files.</summary>
    public long TotalBytes => Files.Values.Sum();
}

/// <summary>How faithfully an exported LoRA carries the U-Net's fine-tuning.</summary>
public sealed record LoraExportReport
{
    internal LoraExportReport(IReadOnlyList<LoraLayerExtraction> layers, IReadOnlyList<string> unchangedLayers, IReadOnlyDictionary<string, double> notCarried)
    {
        Layers = layers;
        UnchangedLayers = unchangedLayers;
        NotCarried = notCarried;
    }

    /// <summary>Per wrapped layer: rank and measured reconstruction errors.</summary>
    internal IReadOnlyList<LoraLayerExtraction> Layers { get; }

    /// <summary>The number of layers the LoRA holds an adapter for.</summary>
    public int LayerCount => Layers.Count;

    /// <summary>Considered layers whose weights did not change (no adapter written).</summary>
    public IReadOnlyList<string> UnchangedLayers { get; }

    /// <summary>U-Net tensors that changed in fine-tuning but are not a LoRA layer's weight (biases, norms,
    /// <c>conv_in</c>, time embedding, up/downsamplers, …), by diffusers parameter name, with their relative change
    /// ‖W_tuned − W_base‖ / ‖W_base‖ (the absolute change when the base tensor is zero): applying the LoRA to the base
    /// model leaves them at the base values.</summary>
    public IReadOnlyDictionary<string, double> NotCarried { get; }

    /// <summary>True when the concept was trained with LoRA adapters and the export holds them exactly as trained (then
    /// <see cref="MaxRelativeError"/> is 0); false when the adapters were extracted from the weight changes.</summary>
    public bool Trained { get; init; }

    /// <summary>The largest ‖ΔW − up·down‖ / ‖ΔW‖ over the layers (0 when there are none).</summary>
    public double MaxRelativeError => Layers.Count == 0 ? 0 : Layers.Max(l => l.RelativeError);

    /// <summary>The largest relative change among <see cref="NotCarried"/> (0 when there are none).</summary>
    public double MaxNotCarriedRelativeChange => NotCarried.Count == 0 ? 0 : NotCarried.Values.Max();
}

/// <summary>Progress of an export.</summary>
/// <param name="Stage">What is being done, e.g. "fingerprinting the base model", "writing unet", "extracting the LoRA".</param>
/// <param name="Completed">Units done in this stage.</param>
/// <param name="Total">Units of this stage.</param>
public sealed record ConceptExportProgress(string Stage, int Completed, int Total);
