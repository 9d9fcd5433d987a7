using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A concept made elsewhere, for <see cref="PersonalizedModel.ImportAsync(ConceptImport, PersonalizationPipeline, CancellationToken)"/>:
/// a textual-inversion embedding (diffusers' <c>learned_embeds.safetensors</c>, <c>{token: vector}</c>, or an
/// A1111/ComfyUI <c>&lt;trigger&gt;.safetensors</c>, whose token is its file name), optionally with a fine-tuned diffusers
/// <c>unet/</c> folder and/or a LoRA file (kohya or diffusers layout, merged into the weights). The base model is the
/// pipeline's; nothing of this library's own metadata is needed.
/// </summary>
/// <param name="EmbeddingPath">The embedding file (safetensors; pickles are refused).</param>
public sealed record ConceptImport(string EmbeddingPath)
{
    /// <summary>A fine-tuned diffusers U-Net folder (<c>config.json</c> + safetensors weights) of the same base model; null keeps the base U-Net.</summary>
    public string? UNetFolder { get; init; }

    /// <summary>A LoRA file to merge into the U-Net (and text encoder, when it has such keys); null for none.</summary>
    public string? LoraPath { get; init; }

    /// <summary>The strength the LoRA is merged with (default 1).</summary>
    public double LoraScale { get; init; } = 1.0;

    /// <summary>Use this token instead of the one the file names (only for files holding one embedding).</summary>
    public string? Token { get; init; }

    /// <summary>The category word, so <c>{}</c> in prompts expands to "token category"; empty (default): <c>{}</c> is the token alone.</summary>
    public string Category { get; init; } = "";

    /// <summary>
    /// Reads a folder another tool wrote: the embedding is <c>learned_embeds.safetensors</c> or else the one safetensors
    /// file whose tensors are not a LoRA's (<c>lora_…</c>, <c>….lora.…</c>) nor a checkpoint's; <c>unet/</c> is used when
    /// present, and a single LoRA file (e.g. <c>pytorch_lora_weights.safetensors</c>) is merged.
    /// </summary>
    /// <exception cref="ModelConfigException">The folder is missing, holds no embedding file or several candidates, or only a pickle.</exception>
    public static ConceptImport FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full)) throw new ModelConfigException(full, null, "the concept folder does not exist");
        string unet = Path.Combine(full, "unet");
        var files = Directory.EnumerateFiles(full, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
        var loras = files.Where(IsLora).ToArray();
        string diffusers = Path.Combine(full, Text.LearnedEmbeddings.DiffusersFileName);
        string embedding;
        if (File.Exists(diffusers)) embedding = diffusers;
        else
        {
            var candidates = files.Except(loras).Where(f => !IsCheckpoint(f)).ToArray();
            if (candidates.Length == 0)
            {
                string? pickle = Directory.EnumerateFiles(full).FirstOrDefault(f => Path.GetExtension(f) is ".bin" or ".pt");
                if (pickle is not null) throw InvalidWeightsException.Pickle(pickle);
                throw new ModelConfigException(full, null, $"holds no embedding file ({Text.LearnedEmbeddings.DiffusersFileName} or an A1111 <trigger>.safetensors)");
            }
            if (candidates.Length > 1)
                throw new ModelConfigException(full, null, $"holds several embedding files ({string.Join(", ", candidates.Select(Path.GetFileName))}); pass the one to use");
            embedding = candidates[0];
        }
        if (loras.Length > 1)
            throw new ModelConfigException(full, null, $"holds several LoRA files ({string.Join(", ", loras.Select(Path.GetFileName))}); pass the one to use");
        return new ConceptImport(embedding)
        {
            UNetFolder = Directory.Exists(unet) ? unet : null,
            LoraPath = loras.Length == 1 ? loras[0] : null,
        };
    }

    /// <summary>Whether a safetensors file's tensors are LoRA layers (kohya, diffusers or PEFT names).</summary>
    internal static bool IsLora(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Names.Any(n => LoraKeys.Parse(n) is not null);
    }

    private static bool IsCheckpoint(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Names.Any(n => n.StartsWith("model.diffusion_model.", StringComparison.Ordinal) || n.StartsWith("first_stage_model.", StringComparison.Ordinal)
            || n.StartsWith("cond_stage_model.", StringComparison.Ordinal));
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(EmbeddingPath);
        if (!double.IsFinite(LoraScale)) throw new ArgumentOutOfRangeException(nameof(LoraScale), LoraScale, "must be finite");
        if (Token is not null && (Token.Length == 0 || Token.Any(char.IsWhiteSpace) || Token.Contains('{') || Token.Contains('}')))
            throw new ArgumentException($"The token '{Token}' must be one non-empty word without whitespace or braces.", nameof(Token));
        ArgumentNullException.ThrowIfNull(Category);
        if (Category.Contains('{') || Category.Contains('}')) throw new ArgumentException($"The category '{Category}' must not contain braces.", nameof(Category));
    }
}
