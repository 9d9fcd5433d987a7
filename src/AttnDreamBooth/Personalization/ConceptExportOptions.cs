using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>How <see cref="PersonalizedModel.ExportAsync"/> writes a concept.</summary>
public sealed record ConceptExportOptions
{
    /// <summary>The default rank of an exported LoRA.</summary>
    public const int DefaultLoraRank = 32;

    /// <summary>What to write (default: a diffusers pipeline folder).</summary>
    public ConceptExportFormat Format { get; init; } = ConceptExportFormat.Diffusers;

    /// <summary>The type of the written network weights (U-Net, VAE, text encoder, LoRA): float32 (default), float16 or
    /// bfloat16. Embedding files are always float32.</summary>
    public torch.ScalarType WeightsDType { get; init; } = torch.ScalarType.Float32;

    /// <summary>The rank of every LoRA layer (capped at the layer's own rank); null keeps the full rank, which reproduces
    /// the fine-tuned weight changes of the wrapped layers up to float32 rounding.</summary>
    public int? LoraRank { get; init; } = DefaultLoraRank;

    /// <summary>The U-Net layers the LoRA covers (default: attention, feed-forward, transformer projections and ResNet
    /// convolutions). Changes of other tensors (biases, norms, <c>conv_in</c>, …) cannot be part of a LoRA and are listed
    /// in <see cref="ConceptExportResult.Lora"/>.</summary>
    public LoraUNetModules LoraModules { get; init; } = LoraUNetModules.All;

    /// <summary>The trigger word of the A1111/ComfyUI embedding file (its file name); null uses the concept's token. The
    /// diffusers export always uses the token the concept was trained with.</summary>
    public string? TriggerWord { get; init; }

    /// <summary>The Stable Diffusion family of the single-file layout; null (the only value users can give) infers it from
    /// the single file the base came from, or from the text encoder: <c>quick_gelu</c> CLIP is SD 1.x, <c>gelu</c>
    /// OpenCLIP is SD 2.x.</summary>
    internal StableDiffusionFamily? Family { get; init; }

    /// <summary>Replace an existing non-empty output folder (default false: it is refused). The new folder is complete
    /// before it replaces the old one.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Format)) throw new ArgumentOutOfRangeException(nameof(Format), Format, "unknown export format");
        if (WeightsDType is not (torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
            throw new ArgumentOutOfRangeException(nameof(WeightsDType), WeightsDType, "weights are exported as Float32, Float16 or BFloat16");
        if (LoraRank is <= 0) throw new ArgumentOutOfRangeException(nameof(LoraRank), LoraRank, "the LoRA rank must be positive (null: full rank)");
        if (Format == ConceptExportFormat.Lora && LoraModules == LoraUNetModules.None)
            throw new ArgumentException("A LoRA export needs at least one group of U-Net layers.", nameof(LoraModules));
        if (TriggerWord is not null) A1111EmbeddingFile.FileName(TriggerWord);
        if (Family is { } family && !Enum.IsDefined(family)) throw new ArgumentOutOfRangeException(nameof(Family), family, "unknown family");
    }
}
