using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Text;

/// <summary>
/// Reads and writes learned token embeddings in the formats other tools use:
/// diffusers' <c>learned_embeds.safetensors</c> (<c>{token: [n, dim]}</c>, also <c>[dim]</c>) and AUTOMATIC1111-style
/// safetensors embeddings (<c>emb_params</c> or <c>string_to_param.*</c>; the trigger word is the file name).
/// Pickle files (<c>.bin</c>, <c>.pt</c>) are refused.
/// </summary>
internal static class LearnedEmbeddings
{
    /// <summary>The file name diffusers' Textual Inversion script writes.</summary>
    public const string DiffusersFileName = "learned_embeds.safetensors";

    /// <summary>Reads <paramref name="path"/> into <c>{token: [n, dim]}</c> (float32, CPU), in file order, with the
    /// <see cref="LearnedEmbeddingsReadOptions.Default"/> limits.</summary>
    /// <exception cref="InvalidWeightsException">A pickle file.</exception>
    /// <exception cref="InvalidWeightsException">No embedding in the file, a tensor that is not [dim] / [n, dim],
    /// a tensor that is not floating point, more rows than allowed, or a non-finite value.</exception>
    public static IReadOnlyList<KeyValuePair<string, torch.Tensor>> Read(string path) => Read(path, LearnedEmbeddingsReadOptions.Default);

    /// <summary>Reads <paramref name="path"/> into <c>{token: [n, dim]}</c> (float32, CPU), in file order. Only
    /// floating-point tensors (F16, BF16, F32, F64) are embeddings: integer or boolean ones are refused rather than
    /// converted. The row count is checked against <see cref="LearnedEmbeddingsReadOptions.MaxRows"/> from the header,
    /// before anything is allocated; with <see cref="LearnedEmbeddingsReadOptions.CheckFinite"/> every value must be finite.</summary>
    /// <exception cref="InvalidWeightsException">A pickle file.</exception>
    /// <exception cref="InvalidWeightsException">The file breaks one of the rules above; the message says which and names the tensor.</exception>
    public static IReadOnlyList<KeyValuePair<string, torch.Tensor>> Read(string path, LearnedEmbeddingsReadOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        string full = Path.GetFullPath(path);
        string extension = Path.GetExtension(full).ToLowerInvariant();
        if (extension is ".bin" or ".pt" or ".pth" or ".ckpt") throw InvalidWeightsException.Pickle(full);
        if (!File.Exists(full)) throw new FileNotFoundException($"The embeddings file '{full}' does not exist.", full);

        using var file = SafetensorsFile.Open(full);
        var names = file.Names.ToArray();
        if (names.Any(n => n is "clip_l" or "clip_g"))
            throw InvalidWeightsException.Embeddings(full, "this is an SDXL embedding (clip_l / clip_g); only SD 1.x / 2.x embeddings are supported");

        var a1111 = names.Where(n => n == "emb_params" || n.StartsWith("string_to_param", StringComparison.Ordinal)).ToArray();
        // Only the tensors read as embeddings are checked (A1111's string_to_token bookkeeping is an integer tensor).
        var embeddingNames = a1111.Length > 0 ? a1111 : names.Where(n => !n.StartsWith("string_to_token", StringComparison.Ordinal)).ToArray();
        EmbeddingFileChecks.CheckHeader(full, file, embeddingNames, options.MaxRows);

        var result = new List<KeyValuePair<string, torch.Tensor>>();
        if (a1111.Length > 0)
        {
            if (a1111.Length > 1) throw InvalidWeightsException.Embeddings(full, $"an A1111 embedding holds one parameter, found {string.Join(", ", a1111)}");
            result.Add(new(Path.GetFileNameWithoutExtension(full), AsRows(full, a1111[0], file.ReadTensor(a1111[0], torch.float32))));
        }
        else
        {
            // Everything else in the file is token -> embedding; A1111's bookkeeping entries are not embeddings.
            foreach (string name in names.Where(n => !n.StartsWith("string_to_token", StringComparison.Ordinal)))
                result.Add(new(name, AsRows(full, name, file.ReadTensor(name, torch.float32))));
        }
        if (result.Count == 0) throw InvalidWeightsException.Embeddings(full, "the file holds no embedding");
        if (options.CheckFinite) EmbeddingFileChecks.CheckFinite(full, result);
        return result;
    }

    /// <summary>Writes <c>{token: [n, dim]}</c> in diffusers' format (float32 unless the tensors say otherwise), atomically.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, torch.Tensor> embeddings)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(embeddings);
        if (embeddings.Count == 0) throw new ArgumentException("There is no embedding to write.", nameof(embeddings));
        foreach (var (token, tensor) in embeddings)
        {
            if (tensor.dim() != 2) throw new ArgumentException($"The embedding of '{token}' must be [n, dim], got [{string.Join(", ", tensor.shape)}].", nameof(embeddings));
        }
        SafetensorsWriter.Write(path, embeddings, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Asynchronous <see cref="Write"/>.</summary>
    public static Task WriteAsync(string path, IReadOnlyDictionary<string, torch.Tensor> embeddings, CancellationToken ct = default) =>
        Task.Run(() => Write(path, embeddings), ct);

    private static torch.Tensor AsRows(string file, string name, torch.Tensor tensor)
    {
        if (tensor.dim() == 1) return tensor.unsqueeze(0);
        if (tensor.dim() == 2 && tensor.shape[0] > 0) return tensor;
        var shape = string.Join(", ", tensor.shape);
        tensor.Dispose();
        throw InvalidWeightsException.Embeddings(file, $"'{name}' has shape [{shape}]; an embedding is [dim] or [n, dim]");
    }
}
