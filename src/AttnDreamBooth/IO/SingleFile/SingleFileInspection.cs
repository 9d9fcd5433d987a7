namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// What a single file says about itself, read from its header alone: the family, how many tensors each part has, EMA
/// copies, the stored dtypes and two widths that help pick the right configs (they are hints for choosing a config
/// folder, never used for mapping).
/// </summary>
/// <param name="FilePath">The file.</param>
/// <param name="Family">The family from the text-encoder prefix, or null without text encoder.</param>
/// <param name="TensorCounts">Tensors per part: <c>unet</c>, <c>vae</c>, <c>text_encoder</c>, <c>ema</c>, <c>other</c>.</param>
/// <param name="DTypes">Tensors per stored dtype (e.g. <c>F16</c>).</param>
/// <param name="TextEncoderWidth">The token embedding width (768 for SD 1.x, 1024 for SD 2.x), or null.</param>
/// <param name="CrossAttentionDim">The U-Net's cross-attention input width (first <c>attn2.to_k</c>), or null.</param>
internal sealed record SingleFileInspection(string FilePath, StableDiffusionFamily? Family, IReadOnlyDictionary<string, int> TensorCounts,
    IReadOnlyDictionary<string, int> DTypes, long? TextEncoderWidth, long? CrossAttentionDim)
{
    /// <summary>Reads the header of <paramref name="path"/>.</summary>
    /// <exception cref="InvalidWeightsException">The file is a pickle.</exception>
    public static SingleFileInspection Inspect(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (SingleFileCheckpoint.IsPickle(path)) throw InvalidWeightsException.Pickle(Path.GetFullPath(path));
        using var file = SafetensorsFile.Open(path);
        var family = SingleFileCheckpoint.DetectFamily(file.Names, file.FilePath);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal) { ["unet"] = 0, ["vae"] = 0, ["text_encoder"] = 0, ["ema"] = 0, ["other"] = 0 };
        foreach (string key in file.Names)
        {
            string part = key.StartsWith("model.diffusion_model.", StringComparison.Ordinal) ? "unet"
                : key.StartsWith("first_stage_model.", StringComparison.Ordinal) ? "vae"
                : key.StartsWith("cond_stage_model.", StringComparison.Ordinal) ? "text_encoder"
                : key.StartsWith(SingleFileKeyMap.EmaPrefix, StringComparison.Ordinal) ? "ema"
                : "other";
            counts[part]++;
        }
        var dtypes = file.Entries.Values.GroupBy(e => e.DType).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        string? token = family switch
        {
            StableDiffusionFamily.Sd1 => SingleFileComponents.Sd1TextPrefix + "text_model.embeddings.token_embedding.weight",
            StableDiffusionFamily.Sd2 => SingleFileComponents.Sd2TextPrefix + "token_embedding.weight",
            _ => null,
        };
        long? width = token is not null && file.Entries.TryGetValue(token, out var t) && t.Shape.Length == 2 ? t.Shape[1] : null;
        var toK = file.Names.FirstOrDefault(n => n.StartsWith("model.diffusion_model.", StringComparison.Ordinal) && n.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal));
        long? context = toK is not null && file.Entries[toK].Shape.Length == 2 ? file.Entries[toK].Shape[1] : null;
        return new SingleFileInspection(file.FilePath, family, counts, dtypes, width, context);
    }
}
