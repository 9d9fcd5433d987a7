using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>Writes a concept in one of the <see cref="ConceptExportFormat"/>s: validates the target, fingerprints the
/// base model, fills a temporary folder and swaps it in (<see cref="AtomicFile.WriteDirectory"/>).</summary>
internal static class ConceptExporter
{
    /// <summary>The export's own record of what it holds (token, category, portable base identity).</summary>
    public const string MetadataFile = "attndreambooth_export.json";

    /// <summary>The human-readable description every export carries.</summary>
    public const string ReadmeFile = "README.txt";

    internal const string TokenEmbeddingKey = "text_model.embeddings.token_embedding.weight";


    public static ConceptExportResult Export(PersonalizedModel model, string folder, ConceptExportOptions options,
        IProgress<ConceptExportProgress>? progress, CancellationToken ct)
    {
        var pipeline = model.Pipeline;
        if (!ReferenceEquals(pipeline.Concept, model) || pipeline.ConceptEmbedding is null)
            throw new InvalidOperationException($"The concept '{model.Token}' is no longer loaded in its pipeline; load it again to export it.");
        if (options.Format == ConceptExportFormat.Diffusers && options.TriggerWord is not null && options.TriggerWord != model.Token)
            throw new ArgumentException($"A diffusers export keeps the token '{model.Token}' the concept was trained with; TriggerWord names embedding files (single-file, embedding and LoRA exports).", nameof(options));
        var c = pipeline.Components;
        string target = CheckTarget(folder, c, options.Overwrite);
        var embedding = pipeline.ConceptEmbedding;
        string trigger = options.Format == ConceptExportFormat.Diffusers ? model.Token : options.TriggerWord ?? model.Token;
        if (options.Format != ConceptExportFormat.Diffusers) A1111EmbeddingFile.FileName(trigger);

        progress?.Report(new ConceptExportProgress("fingerprinting the base model", 0, 1));
        var identity = BaseModelIdentity.Of(c, ct);
        progress?.Report(new ConceptExportProgress("fingerprinting the base model", 1, 1));

        var context = new ExportContext(model, c, embedding, options, trigger, identity, progress, ct);
        LoraExportReport? lora = null;
        AtomicFile.WriteDirectory(target, temp =>
        {
            switch (options.Format)
            {
                case ConceptExportFormat.Diffusers:
                    DiffusersConceptExport.Write(context, temp);
                    break;
                case ConceptExportFormat.SingleFile:
                    WriteSingleFile(context, temp);
                    WriteEmbedding(context, temp);
                    break;
                case ConceptExportFormat.Embedding:
                    WriteEmbedding(context, temp);
                    break;
                case ConceptExportFormat.Lora:
                    lora = LoraConceptExport.Write(context, temp);
                    WriteEmbedding(context, temp);
                    break;
            }
            ct.ThrowIfCancellationRequested();
            WriteMetadata(context, temp, lora);
            AtomicFile.WriteAllText(Path.Combine(temp, ReadmeFile), ConceptExportReadme.Build(context, lora));
        });

        var files = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (string f in Directory.EnumerateFiles(target, "*", SearchOption.AllDirectories))
            files.Add(Path.GetRelativePath(target, f).Replace('\\', '/'), new FileInfo(f).Length);
        var result = new ConceptExportResult(target, options.Format, trigger, files, identity.Name, identity.Fingerprint) { Lora = lora };
        PipelineLog.ConceptExported(pipeline.LoggerFactory.CreateLogger<PersonalizedModel>(), model.Token, options.Format.ToString(), target, result.TotalBytes);
        return result;
    }

    /// <summary>The absolute target, refused when it holds something and may not be replaced, or when replacing it would
    /// remove the base model the export is read from.</summary>
    private static string CheckTarget(string folder, StableDiffusionComponents c, bool overwrite)
    {
        string target = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        if (File.Exists(target)) throw new OutputFolderException(target, "is a file; an export is written as a folder");
        foreach (string used in new[] { c.Folder.Root, c.ModelSource })
        {
            string full = Path.GetFullPath(used).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
            if (full == target || full.StartsWith(target + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new OutputFolderException(target, $"holds the base model ('{full}') the export is made from; choose another folder");
        }
        if (!overwrite && Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new OutputFolderException(target, "already exists and is not empty; choose another folder or pass Overwrite (CLI --force)");
        OutputFolders.CleanStaleTemporaries(Path.GetDirectoryName(target) ?? ".");
        return target;
    }

    private static void WriteEmbedding(ExportContext context, string temp)
    {
        var rows = SingleEntry(context);
        try
        {
            A1111EmbeddingFile.Write(temp, context.Trigger, rows);
        }
        finally
        {
            rows.Dispose();
        }
    }

    /// <summary>The concept's rows [n, width] (a CPU copy).</summary>
    internal static torch.Tensor SingleEntry(ExportContext context)
    {
        var entries = context.Embedding.ToDictionary();
        if (entries.Count == 1) return entries.Values.Single();
        foreach (var t in entries.Values) t.Dispose();
        throw new InvalidOperationException($"The concept's embedding holds {entries.Count} entries ({string.Join(", ", entries.Keys)}); an export holds one.");
    }

    private static void WriteSingleFile(ExportContext context, string temp)
    {
        var c = context.Components;
        var family = FamilyOf(c, context.Options.Family);
        var keyMap = SingleFileKeyMap.Create(family, SingleFileArchitecture.FromFolder(c.Folder.Root));
        string path = Path.Combine(temp, CheckpointFileName(context.Trigger));
        context.Report("writing the single-file checkpoint", 0, 1);
        using var scope = torch.NewDisposeScope();
        var textEncoder = TextEncoderState(c.TextEncoder, context.Embedding, grow: false);
        using var baseProjection = family == StableDiffusionFamily.Sd2 ? BaseTextProjection(c) : null;
        var sources = new Dictionary<string, IStateDictSource>(StringComparer.Ordinal)
        {
            [SingleFileComponents.UNet] = new TensorStateDictSource("the fine-tuned U-Net", c.UNet.state_dict()),
            [SingleFileComponents.Vae] = new TensorStateDictSource("the VAE", c.Vae.state_dict()),
            [SingleFileComponents.TextEncoder] = new TensorStateDictSource("the text encoder", textEncoder),
        };
        context.CancellationToken.ThrowIfCancellationRequested();
        SingleFileExporter.Export(path, keyMap, sources, context.Options.WeightsDType, context.Logger, baseProjection);
        context.Report("writing the single-file checkpoint", 1, 1);
    }

    /// <summary>The checkpoint's name in a single-file export.</summary>
    internal static string CheckpointFileName(string trigger) => $"{trigger}-checkpoint.safetensors";

    /// <summary>The LoRA's name in a LoRA export.</summary>
    internal static string LoraFileName(string trigger) => $"{trigger}-lora.safetensors";

    /// <summary>The family of the single-file layout: given, the base single file's, or the text encoder's.</summary>
    internal static StableDiffusionFamily FamilyOf(StableDiffusionComponents c, StableDiffusionFamily? given)
    {
        if (given is { } family) return family;
        if (File.Exists(c.ModelSource))
        {
            using var file = SafetensorsFile.Open(c.ModelSource);
            if (SingleFileCheckpoint.DetectFamily(file.Names, c.ModelSource) is { } detected) return detected;
        }
        return c.TextEncoder.Config.HiddenAct switch
        {
            "quick_gelu" => StableDiffusionFamily.Sd1,
            "gelu" => StableDiffusionFamily.Sd2,
            var act => throw new ArgumentException(
                $"The text encoder's activation '{act}' says neither SD 1.x (quick_gelu) nor SD 2.x (gelu); set ConceptExportOptions.Family.", "options"),
        };
    }

    /// <summary>The base single file's own OpenCLIP text projection, when the base is one and holds it.</summary>
    private static torch.Tensor? BaseTextProjection(StableDiffusionComponents c)
    {
        if (!File.Exists(c.ModelSource)) return null;
        using var file = SafetensorsFile.Open(c.ModelSource);
        return file.Contains(SingleFileExporter.TextProjectionKey) ? file.ReadTensor(SingleFileExporter.TextProjectionKey) : null;
    }

    /// <summary>
    /// The text encoder's tensors with the concept rows written into the token table: every row whose id the table holds
    /// (an existing token such as <c>sks</c>), and with <paramref name="grow"/> the table grown to hold new tokens too.
    /// Other tensors are views of the live ones; the table is a new tensor. Call inside a dispose scope.
    /// </summary>
    internal static Dictionary<string, torch.Tensor> TextEncoderState(ClipTextModel textEncoder, ConceptEmbedding embedding, bool grow)
    {
        var state = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in textEncoder.state_dict())
        {
            if (!ClipTextModel.IsIgnorableKey(name)) state[name] = tensor.detach();
        }
        using var noGrad = torch.no_grad();
        var table = state[TokenEmbeddingKey];
        long rows = grow ? Math.Max(table.shape[0], embedding.TokenIds.Max() + 1L) : table.shape[0];
        var written = rows > table.shape[0]
            ? torch.cat([table, torch.zeros([rows - table.shape[0], table.shape[1]], dtype: table.dtype, device: table.device)], 0)
            : table.clone();
        for (int k = 0; k < embedding.TokenIds.Count; k++)
        {
            int id = embedding.TokenIds[k];
            if (id < rows) written[id].copy_(embedding.Weight[k].detach());
        }
        state[TokenEmbeddingKey] = written;
        return state;
    }

    private static void WriteMetadata(ExportContext context, string temp, LoraExportReport? lora)
    {
        var model = context.Model;
        var metadata = new JsonObject
        {
            ["format_version"] = 1,
            ["format"] = JsonFiles.EnumValue(context.Options.Format),
            ["token"] = model.Token,
            ["trigger_word"] = context.Trigger,
            ["category"] = model.Category,
            ["prompt_example"] = ConceptExportReadme.PromptExample(context.Trigger, model.Category),
            ["token_ids"] = new JsonArray(context.Embedding.TokenIds.Select(id => (JsonNode)id).ToArray()),
            ["token_kind"] = JsonFiles.EnumValue(context.Embedding.Kinds[0]),
            ["base_model"] = new JsonObject
            {
                ["name"] = context.BaseModel.Name,
                ["fingerprint"] = context.BaseModel.Fingerprint,
                ["files"] = new JsonArray(context.BaseModel.Files.Select(f => (JsonNode)new JsonObject
                {
                    ["path"] = f.Path,
                    ["bytes"] = f.Bytes,
                    ["sha256"] = f.Sha256,
                }).ToArray()),
            },
            ["weights_dtype"] = DiffusersConceptExport.TorchDTypeName(context.Options.WeightsDType),
        };
        if (model.ImportedFrom is null)
        {
            metadata["seed"] = model.Seed;
            metadata["stage_steps"] = new JsonArray(model.Plan.EnabledStages.Select(s => (JsonNode)model.Plan[s].Steps).ToArray());
        }
        if (lora is not null)
        {
            metadata["lora"] = new JsonObject
            {
                ["rank"] = lora.Trained ? (JsonNode)lora.Layers.Max(l => l.Rank) : context.Options.LoraRank is { } r ? (JsonNode)r : (JsonNode)"full",
                ["source"] = lora.Trained ? "trained" : "extracted",
                ["layers"] = lora.Layers.Count,
                ["max_relative_error"] = lora.MaxRelativeError,
                ["not_carried"] = lora.NotCarried.Count,
                ["max_not_carried_relative_change"] = lora.MaxNotCarriedRelativeChange,
            };
        }
        AtomicFile.WriteAllText(Path.Combine(temp, MetadataFile), JsonFiles.Serialize(metadata));
    }
}

/// <summary>Everything one export run needs.</summary>
internal sealed record ExportContext(PersonalizedModel Model, StableDiffusionComponents Components, ConceptEmbedding Embedding,
    ConceptExportOptions Options, string Trigger, BaseModelIdentity BaseModel, IProgress<ConceptExportProgress>? Progress, CancellationToken CancellationToken)
{
    public ILogger Logger => Model.Pipeline.LoggerFactory.CreateLogger<PersonalizedModel>();

    public void Report(string stage, int completed, int total) => Progress?.Report(new ConceptExportProgress(stage, completed, total));
}
