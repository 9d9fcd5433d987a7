using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// Writes diffusers components as one original-layout (LDM) single-file <c>.safetensors</c> checkpoint, the reverse of
/// <see cref="SingleFileCheckpoint"/>: every diffusers tensor goes to exactly one original key (q/k/v are fused back
/// for SD 2.x, the VAE mid-attention Linear weights become 1x1 convs). The file is written atomically.
/// </summary>
/// <remarks>All tensors are held in memory while writing (about 4 GB for SD 1.5 in float32; pass float16 to halve it).
/// SD 2.x files get OpenCLIP's <c>text_projection</c> ([width, projection], see <see cref="TextProjectionKey"/>), which
/// Stable Diffusion never uses but loaders read the text encoder's width from; the other OpenCLIP tensors SD does not
/// use (<c>logit_scale</c>, the unused last layer) are not part of a diffusers text encoder and are not written.</remarks>
internal static class SingleFileExporter
{
    /// <summary>The SD 2.x key of OpenCLIP's text projection. diffusers' single-file loader takes the text encoder's width
    /// from its first dimension (and assumes 1024 when it is missing), so every SD 2.x export carries it.</summary>
    public const string TextProjectionKey = SingleFileComponents.Sd2TextPrefix + "text_projection";

    private static readonly (string Legacy, string Current)[] LegacyVaeAttention =
        [("query.", "to_q."), ("key.", "to_k."), ("value.", "to_v."), ("proj_attn.", "to_out.0.")];

    /// <summary>Exports the <c>unet</c>, <c>vae</c> and <c>text_encoder</c> of a diffusers folder.</summary>
    /// <param name="diffusersFolder">The pipeline folder (configs and safetensors weights).</param>
    /// <param name="outputPath">The single file to write.</param>
    /// <param name="family">The layout of the text encoder (SD 1.x CLIP or SD 2.x OpenCLIP): a diffusers folder does not say.</param>
    /// <param name="dtype">Convert every tensor to this type (e.g. float16); null keeps the stored types.</param>
    /// <param name="logger">Receives skipped keys.</param>
    public static void ExportFolder(string diffusersFolder, string outputPath, StableDiffusionFamily family, torch.ScalarType? dtype = null, ILogger? logger = null)
    {
        var folder = DiffusersFolder.Open(diffusersFolder);
        var architecture = SingleFileArchitecture.FromFolder(folder.Root);
        var sources = new Dictionary<string, IStateDictSource>(StringComparer.Ordinal);
        try
        {
            foreach (string component in SingleFileComponents.All)
                sources[component] = StateDictSource.OpenComponent(folder.ComponentPath(component));
            Export(outputPath, SingleFileKeyMap.Create(family, architecture), sources, dtype, logger);
        }
        finally
        {
            foreach (var s in sources.Values) (s as IDisposable)?.Dispose();
        }
    }

    /// <summary>Exports the given components (by diffusers component name) with <paramref name="keyMap"/>.</summary>
    /// <param name="outputPath">The single file to write (atomically).</param>
    /// <param name="keyMap">The layout.</param>
    /// <param name="components">The components by diffusers name.</param>
    /// <param name="dtype">Convert every tensor to this type; null keeps the stored types.</param>
    /// <param name="logger">Receives skipped keys.</param>
    /// <param name="textProjection">SD 2.x only: the <see cref="TextProjectionKey"/> tensor to write ([width, projection],
    /// e.g. the base model's own); null writes the identity [width, width].</param>
    /// <exception cref="InvalidWeightsException">A tensor has no place in the layout, or a fused q/k/v set is incomplete.</exception>
    /// <exception cref="ArgumentException"><paramref name="textProjection"/> is not [width, n].</exception>
    public static void Export(string outputPath, SingleFileKeyMap keyMap, IReadOnlyDictionary<string, IStateDictSource> components,
        torch.ScalarType? dtype = null, ILogger? logger = null, torch.Tensor? textProjection = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        ArgumentNullException.ThrowIfNull(keyMap);
        ArgumentNullException.ThrowIfNull(components);
        logger ??= NullLogger.Instance;
        var output = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (component, source) in components)
            {
                if (!keyMap.Components.Contains(component))
                    throw new ArgumentException($"The key map has no '{component}' (it covers {string.Join(", ", keyMap.Components)}).", nameof(components));
                var fused = new Dictionary<string, (SingleFileKeyMapping Mapping, torch.Tensor?[] Parts)>(StringComparer.Ordinal);
                foreach (string name in source.Names.Order(StringComparer.Ordinal))
                {
                    if (name == "text_model.embeddings.position_ids")
                    {
                        SingleFileLog.SkippingOnExport(logger, outputPath, name, "a constant buffer of older transformers files");
                        continue;
                    }
                    string key = component == SingleFileComponents.Vae ? CurrentVaeName(name) : name;
                    var mapping = keyMap.ToOriginal(component, key, out int part, out int parts)
                        ?? throw InvalidWeightsException.SingleFile($"{source.FileOf(name)}", $"{component}/{name} has no place in the {keyMap.Family} single-file layout generated from the configs");
                    var value = source.Read(name, dtype);
                    if (mapping.Op == SingleFileOp.SplitDim0)
                    {
                        if (!fused.TryGetValue(mapping.OriginalKey, out var group)) fused[mapping.OriginalKey] = group = (mapping, new torch.Tensor?[parts]);
                        group.Parts[part] = value;
                        continue;
                    }
                    var stored = mapping.Op == SingleFileOp.Reshape ? Reshaped(value, mapping) : value;
                    if (!output.TryAdd(mapping.OriginalKey, stored))
                    {
                        stored.Dispose();
                        throw InvalidWeightsException.SingleFile(source.FileOf(name), $"{component}/{name} maps to {mapping.OriginalKey}, which another tensor already provides");
                    }
                }
                foreach (var (original, (mapping, parts)) in fused)
                {
                    int missing = Array.FindIndex(parts, p => p is null);
                    if (missing >= 0)
                        throw InvalidWeightsException.SingleFile(original, $"needs {mapping.DiffusersKeys[missing]} of the {component}, which is missing");
                    output[original] = torch.cat(parts!, 0);
                    foreach (var p in parts) p!.Dispose();
                }
            }
            if (keyMap.Family == StableDiffusionFamily.Sd2 && components.ContainsKey(SingleFileComponents.TextEncoder) && !output.ContainsKey(TextProjectionKey))
                output[TextProjectionKey] = TextProjection(keyMap, output, dtype, textProjection);
            SafetensorsWriter.Write(outputPath, output, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in output.Values) t.Dispose();
        }
    }

    /// <summary>The shape <see cref="TextProjectionKey"/> gets when the base model has none: the identity over the
    /// text encoder's width (real SD 2.x files hold OpenCLIP ViT-H's [1024, 1024]).</summary>
    internal static long[] IdentityTextProjectionShape(SingleFileKeyMap keyMap)
    {
        var text = keyMap.Architecture.TextEncoder ?? throw new ArgumentException("The key map has no text encoder.", nameof(keyMap));
        return [text.HiddenSize, text.HiddenSize];
    }

    private static torch.Tensor TextProjection(SingleFileKeyMap keyMap, Dictionary<string, torch.Tensor> output, torch.ScalarType? dtype, torch.Tensor? given)
    {
        var shape = IdentityTextProjectionShape(keyMap);
        var type = dtype ?? (output.TryGetValue(SingleFileComponents.Sd2TextPrefix + "token_embedding.weight", out var table) ? table.dtype : torch.float32);
        if (given is null) return torch.eye(shape[0], dtype: type);
        if (given.dim() != 2 || given.shape[0] != shape[0])
            throw new ArgumentException($"The text projection must be [{shape[0]}, n] (the text encoder's width first), got [{string.Join(", ", given.shape)}].", "textProjection");
        return given.detach().to_type(type).cpu().clone();
    }

    private static torch.Tensor Reshaped(torch.Tensor value, SingleFileKeyMapping mapping)
    {
        var shaped = value.reshape(mapping.OriginalShape(value.shape));
        value.Dispose();
        return shaped;
    }

    /// <summary>VAE weights saved before diffusers 0.14 name the mid attention query/key/value/proj_attn.</summary>
    private static string CurrentVaeName(string name)
    {
        const string marker = "mid_block.attentions.0.";
        int at = name.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return name;
        string leaf = name[(at + marker.Length)..];
        foreach (var (legacy, current) in LegacyVaeAttention)
        {
            if (leaf.StartsWith(legacy, StringComparison.Ordinal)) return name[..(at + marker.Length)] + current + leaf[legacy.Length..];
        }
        return name;
    }
}
