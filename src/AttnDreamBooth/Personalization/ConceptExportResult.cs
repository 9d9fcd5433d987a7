using AttnDreamBooth.Models.Lora;

namespace AttnDreamBooth.Personalization;

/// <summary>What <see cref="PersonalizedModel.ExportAsync"/> wrote.</summary>
/// <param name="Folder">The export folder (absolute).</param>
/// <param name="Format">The format.</param>
/// <param name="TriggerWord">The word prompts use (the embedding file's name for A1111/ComfyUI).</param>
/// <param name="Files">Every file written and its size in bytes, by path relative to <paramref name="Folder"/> with <c>/</c>
/// separators (enumerated in ordinal path order).</param>
/// <param name="BaseModel">The base model the export needs (or, for the diffusers format, contains).</param>
public sealed record ConceptExportResult(string Folder, ConceptExportFormat Format, string TriggerWord, IReadOnlyDictionary<string, long> Files, BaseModelIdentity BaseModel)
{
    /// <summary>For a LoRA export: what the LoRA holds and what it cannot; null otherwise.</summary>
    public LoraExportReport? Lora { get; init; }

    /// <summary>The total size of the files.</summary>
    public long TotalBytes => Files.Values.Sum();
}

/// <summary>How faithfully an exported LoRA carries the U-Net's fine-tuning.</summary>
/// <param name="Layers">Per wrapped layer: rank and measured reconstruction errors (see <see cref="LoraLayerExtraction"/>).</param>
/// <param name="UnchangedLayers">Considered layers whose weights did not change (no adapter written).</param>
/// <param name="NotCarried">U-Net tensors that changed in fine-tuning but are not a LoRA layer's weight (biases, norms,
/// <c>conv_in</c>, time embedding, up/downsamplers, …), by diffusers parameter name, with their relative change
/// ‖W_tuned − W_base‖ / ‖W_base‖ (the absolute change when the base tensor is zero): applying the LoRA to the base model
/// leaves them at the base values.</param>
public sealed record LoraExportReport(IReadOnlyList<LoraLayerExtraction> Layers, IReadOnlyList<string> UnchangedLayers, IReadOnlyDictionary<string, double> NotCarried)
{
    /// <summary>True when the concept was trained with LoRA adapters and the export holds them exactly as trained
    /// (<see cref="Layers"/> then report no error); false when the adapters were extracted from the weight changes.</summary>
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
