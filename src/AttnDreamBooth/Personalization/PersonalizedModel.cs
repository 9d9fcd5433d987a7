using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A trained concept: the learned token embedding plus the fine-tuned U-Net of the pipeline it lives in.
/// <see cref="SaveAsync(string, CancellationToken)"/> writes <c>learned_embeds.safetensors</c> (diffusers textual-inversion format), the U-Net
/// as a diffusers <c>unet/</c> folder — or, for a concept whose U-Net stages trained LoRA adapters
/// (<see cref="StageOptions.Lora"/>), the adapters as <c>pytorch_lora_weights.safetensors</c> (diffusers LoRA layout) — and
/// <c>attndreambooth.json</c>, which names the base model portably (relative to the concept folder, with its name and
/// weight fingerprint); <see cref="LoadAsync(string, PersonalizationPipeline, CancellationToken)"/> puts it back onto a base pipeline.
/// <see cref="ExportAsync"/> writes it for other tools (a diffusers pipeline folder, an A1111/ComfyUI single file,
/// embedding or LoRA); <see cref="ImportAsync(ConceptImport, PersonalizationPipeline, CancellationToken)"/> brings in a
/// concept made elsewhere.
/// </summary>
public sealed partial class PersonalizedModel
{
    /// <summary>File name of the metadata.</summary>
    public const string MetadataFile = "attndreambooth.json";

    /// <summary>File name of the learned embedding.</summary>
    public const string EmbeddingFile = "learned_embeds.safetensors";

    /// <summary>File name of the LoRA adapters of a concept trained with LoRA (diffusers' default LoRA weight name, so
    /// <c>pipe.load_lora_weights(folder)</c> and <c>pipe.load_textual_inversion(folder)</c> find both files).</summary>
    public const string LoraWeightsFile = "pytorch_lora_weights.safetensors";

    internal PersonalizedModel(PersonalizationPipeline pipeline, string token, string category, string baseModel, StagePlan plan, long seed, IReadOnlyList<double> lossHistory)
    {
        Pipeline = pipeline;
        Token = token;
        Category = category;
        BaseModel = baseModel;
        Plan = plan;
        Seed = seed;
        LossHistory = lossHistory;
    }

    /// <summary>The pipeline holding the fine-tuned weights.</summary>
    public PersonalizationPipeline Pipeline { get; }

    /// <summary>The identifier token ([V]).</summary>
    public string Token { get; }

    /// <summary>The super-category word.</summary>
    public string Category { get; }

    /// <summary>The base model the concept was trained on: its diffusers folder, or its single-file checkpoint (an absolute
    /// path). For a loaded concept, the path its metadata records, resolved against the concept folder (see
    /// <see cref="FindBaseModel"/>); it may not exist on this machine.</summary>
    public string BaseModel { get; }

    /// <summary>The base model's portable name (a Hugging Face repository such as <c>stabilityai/stable-diffusion-2-1-base</c>,
    /// else its folder's or file's name), as <see cref="BaseModelIdentity.Name"/>. Null for a concept loaded from a folder
    /// saved before names were recorded, and for a trained concept until it is saved.</summary>
    public string? BaseModelName { get; internal set; }

    /// <summary>The fingerprint of the base model's weights (<see cref="BaseModelIdentity.Fingerprint"/>), recorded when the
    /// concept is saved; null until then and for older saved concepts.</summary>
    public string? BaseModelFingerprint { get; internal set; }

    /// <summary>Whether the concept's U-Net change is LoRA adapters (trained with <see cref="StageOptions.Lora"/> in every
    /// U-Net stage, or loaded from such a saved concept), so saving writes them instead of a whole U-Net.</summary>
    public bool IsLora => Pipeline.ConceptLora is not null && ReferenceEquals(Pipeline.Concept, this);

    /// <summary>The plan that trained it.</summary>
    public StagePlan Plan { get; }

    /// <summary>The training seed.</summary>
    public long Seed { get; }

    /// <summary>Loss per training step.</summary>
    public IReadOnlyList<double> LossHistory { get; }

    /// <summary>For a concept made elsewhere and brought in with <see cref="ImportAsync(ConceptImport, PersonalizationPipeline, CancellationToken)"/>:
    /// the embedding file it came from (then <see cref="Plan"/>, <see cref="Seed"/> and <see cref="LossHistory"/> say
    /// nothing about its training). Null for concepts trained or saved by this library.</summary>
    public string? ImportedFrom { get; internal init; }

    /// <summary>The learned embedding of the identifier token [hidden] (a CPU copy).</summary>
    public torch.Tensor EmbeddingVector() => Pipeline.ConceptEmbedding!.Weight.detach().cpu().clone()[0];

    /// <summary>Writes the concept to <paramref name="folder"/>. The folder is assembled under a temporary name
    /// and swapped in, so an existing copy survives a failure.</summary>
    public Task SaveAsync(string folder, CancellationToken ct = default) => SaveAsync(folder, overwrite: true, ct);

    /// <summary>Like <see cref="SaveAsync(string, CancellationToken)"/>; with <paramref name="overwrite"/> false an existing
    /// non-empty <paramref name="folder"/> is refused (<see cref="IO.OutputFolderException"/>) instead of replaced. A
    /// replaced folder stays in place until the new one is complete; after any failure exactly one complete concept is there.</summary>
    public Task SaveAsync(string folder, bool overwrite, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        return Pipeline.RunExclusive(() =>
        {
            Save(folder, overwrite, ct);
            return true;
        }, ct);
    }

    private void Save(string folder, bool overwrite, CancellationToken ct)
    {
        string target = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        string parent = Path.GetDirectoryName(target) ?? ".";
        IO.OutputFolders.CleanStaleTemporaries(parent);
        if (!overwrite && Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IO.OutputFolderException(target, "already exists and is not empty (a concept of another run?); choose another folder or pass overwrite: true (CLI --force)");
        var c = Pipeline.Components;
        var lora = IsLora ? Pipeline.ConceptLora : null;
        // The base model is named without this machine's layout: a path relative to the concept folder (so the two can
        // move together), its portable name and the fingerprint of its weights.
        var identity = BaseModelIdentity.Of(c, ct);
        AtomicFile.WriteDirectory(target, temp =>
        {
            Pipeline.ConceptEmbedding!.Save(Path.Combine(temp, EmbeddingFile));
            ct.ThrowIfCancellationRequested();
            if (lora is not null)
            {
                LoraFile.Save(lora, Path.Combine(temp, LoraWeightsFile), LoraFileFormat.Diffusers, new Dictionary<string, string>
                {
                    ["attndreambooth_token"] = Token,
                    ["attndreambooth_base_model"] = identity.Name,
                    ["attndreambooth_base_fingerprint"] = identity.Fingerprint,
                });
            }
            else
            {
                SaveComponent(c, temp, "unet", c.UNet.state_dict());
            }
            ct.ThrowIfCancellationRequested();
            if (DecoderAdaptation is not null) SaveComponent(c, temp, VaeFolder, c.Vae.state_dict());
            ct.ThrowIfCancellationRequested();
            // The exact identity the row was trained on, so a reload binds it to the same id (ConceptTokenIdentity).
            var embedding = Pipeline.ConceptEmbedding!;
            int tokenId = embedding.TokenIds[0];
            var metadata = new PersonalizedModelMetadata(DecoderAdaptation is null ? 1 : VaeFormatVersion, Token, Category, PortableBasePath(target, c.ModelSource), Seed, Plan, LossHistory.ToArray())
            {
                TokenId = tokenId,
                TokenSpelling = c.Tokenizer.GetToken(tokenId),
                TokenKind = embedding.Kinds[0],
                BaseModelName = identity.Name,
                BaseModelFingerprint = identity.Fingerprint,
                LoraFile = lora is null ? null : LoraWeightsFile,
                Vae = DecoderAdaptation is null ? null : VaeFolder,
                DecoderAdaptation = DecoderAdaptation is { } adaptation ? DecoderAdaptationRecord.Of(adaptation, _decoderResolution) : null,
            };
            AtomicFile.WriteAllText(Path.Combine(temp, MetadataFile), JsonFiles.Serialize(metadata));
            ct.ThrowIfCancellationRequested();
        });
        BaseModelName = identity.Name;
        BaseModelFingerprint = identity.Fingerprint;
        PipelineLog.ModelSaved(Pipeline.LoggerFactory.CreateLogger<PersonalizedModel>(), target);
    }

    /// <summary>The base model's path relative to the concept folder (<c>/</c>-separated), or absolute when no relative
    /// path exists (another drive).</summary>
    internal static string PortableBasePath(string conceptFolder, string modelSource)
    {
        string full = Path.GetFullPath(modelSource).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        string relative = Path.GetRelativePath(conceptFolder, full);
        return Path.IsPathRooted(relative) ? full : relative.Replace('\\', '/');
    }

    /// <summary>The recorded base model resolved against the concept folder: a relative path (concepts saved by this
    /// version) from the folder, an absolute one (older concepts) as it is.</summary>
    private static string ResolveBasePath(string conceptFolder, string recorded) =>
        Path.IsPathRooted(recorded) ? recorded : Path.GetFullPath(Path.Combine(conceptFolder, recorded.Replace('/', Path.DirectorySeparatorChar)));

    /// <summary>
    /// The base model a concept saved by <see cref="SaveAsync(string, CancellationToken)"/> was trained on, as its
    /// metadata records it, resolved against <paramref name="conceptFolder"/>: the path is stored relative to the concept
    /// folder, so a concept folder moved or copied together with its base model (keeping their relative place) still
    /// finds it. Reads only the metadata.
    /// </summary>
    /// <returns>The absolute path of the base model's diffusers folder or single file.</returns>
    /// <exception cref="ModelConfigException">The metadata is missing or invalid, or the recorded base model does not exist
    /// at the resolved path (the message gives the recorded path, the base model's name and its fingerprint).</exception>
    public static string FindBaseModel(string conceptFolder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(conceptFolder);
        string folder = Path.GetFullPath(conceptFolder);
        string metadataPath = Path.Combine(folder, MetadataFile);
        var metadata = ReadMetadata(metadataPath);
        string resolved = ResolveBasePath(folder, metadata.BaseModel);
        if (Directory.Exists(resolved) || File.Exists(resolved)) return resolved;
        string identity = metadata.BaseModelName is { } name ? $" (name '{name}', weights fingerprint {metadata.BaseModelFingerprint ?? "not recorded"})" : "";
        throw new ModelConfigException(metadataPath, "base_model",
            $"records the base model as '{metadata.BaseModel}'{identity}, which resolves to '{resolved}' and does not exist; give the base model explicitly (CLI: --model)");
    }

    /// <summary>Loads a concept saved by <see cref="SaveAsync(string, CancellationToken)"/> onto <paramref name="pipeline"/>, which must hold the
    /// same base model and no concept yet: its U-Net weights are replaced and the token is added. A transaction:
    /// every file is validated first (see <see cref="LoadAsync(string, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>).</summary>
    /// <exception cref="ModelConfigException">The folder is incomplete, its metadata is invalid, or it belongs to another base model.</exception>
    /// <exception cref="InvalidWeightsException">The U-Net weights do not fit the pipeline's U-Net.</exception>
    public static Task<PersonalizedModel> LoadAsync(string folder, PersonalizationPipeline pipeline, CancellationToken ct = default) =>
        LoadAsync(folder, pipeline, PersonalizedModelLoadOptions.Default, ct);

    /// <summary>
    /// Loads a concept saved by <see cref="SaveAsync(string, CancellationToken)"/> onto <paramref name="pipeline"/> all-or-nothing. First, without
    /// touching the pipeline: the metadata, the token identity (the recorded token id must be the one this tokenizer
    /// gives the token; concepts saved without an id are bound by <see cref="ConceptTokenIdentity"/>, as training
    /// bound them), the embedding file (present, safetensors, float, within the row limit, finite, as wide as the text
    /// encoder), the <c>unet/</c> config against the base model's and its weights' keys, shapes and values. Only then are
    /// the U-Net weights copied and the token added. A load that fails validation leaves the pipeline bit-identical.
    /// </summary>
    /// <exception cref="ModelConfigException">The folder is incomplete, its metadata is invalid, or it belongs to another base model.</exception>
    /// <exception cref="InvalidWeightsException">The U-Net weights do not fit the pipeline's U-Net.</exception>
    /// <exception cref="InvalidWeightsException">A U-Net weight or the embedding holds NaN or infinity.</exception>
    /// <exception cref="InvalidWeightsException">The embedding's width is not the text encoder's.</exception>
    /// <exception cref="ConceptTokenException">The concept's token is a special token.</exception>
    /// <exception cref="ConceptLoadFailedException">Copying failed after validation (the files changed underneath); the pipeline is unusable.</exception>
    public static Task<PersonalizedModel> LoadAsync(string folder, PersonalizationPipeline pipeline, PersonalizedModelLoadOptions options, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(options);
        return pipeline.RunExclusive(() => Load(Path.GetFullPath(folder), pipeline, options, ct), ct);
    }

    private static PersonalizedModel Load(string folder, PersonalizationPipeline pipeline, PersonalizedModelLoadOptions options, CancellationToken ct)
    {
        if (pipeline.Concept is not null) throw new InvalidOperationException($"The pipeline already holds the concept '{pipeline.Concept.Token}'.");
        string metadataPath = Path.Combine(folder, MetadataFile);
        var metadata = ReadMetadata(metadataPath);
        var c = pipeline.Components;

        // Validation: nothing below changes the pipeline until every file has been checked.
        var binding = ConceptTokenRecord.Bind(metadataPath, metadata, c.Tokenizer);
        var readOptions = new LearnedEmbeddingsReadOptions { CheckFinite = options.CheckFiniteWeights };
        string embeddingPath = Path.Combine(folder, EmbeddingFile);
        if (!File.Exists(embeddingPath)) throw new ModelConfigException(embeddingPath, null, "is missing: the concept's learned embedding is required");
        using var prepared = FitsBase(metadataPath, metadata, c, () => ConceptEmbedding.Prepare(embeddingPath, c.Tokenizer, c.TextEncoder, metadata.Token, readOptions, binding));
        ct.ThrowIfCancellationRequested();

        CheckBaseModel(metadataPath, metadata, pipeline, options, ct);

        var loadOptions = new StateDictLoadOptions { CheckFinite = options.CheckFiniteWeights };
        StateDictSource? source = null;
        StateDictSource? vae = null;
        LoraNetwork? lora = null;
        try
        {
            if (metadata.LoraFile is { } loraName)
            {
                lora = ReadLora(folder, metadataPath, loraName, pipeline, options);
            }
            else
            {
                string unetFolder = Path.Combine(folder, "unet");
                if (!Directory.Exists(unetFolder)) throw new ModelConfigException(unetFolder, null, "is missing: the concept's fine-tuned U-Net is required");
                source = StateDictSource.OpenComponent(unetFolder);
                FitsBase(metadataPath, metadata, c, () =>
                {
                    ConceptComponentConfig.CheckUNet(Path.Combine(unetFolder, "config.json"), c.Folder.ConfigPath("unet"));
                    StateDictLoader.Validate(c.UNet, source, loadOptions);
                    return true;
                });
            }
            vae = OpenVae(folder, metadataPath, metadata, c, loadOptions);
            ct.ThrowIfCancellationRequested();

            // Apply: no cancellation from here on, a half-applied concept is worse than a late one.
            ConceptEmbedding embedding;
            try
            {
                if (source is not null) StateDictLoader.Load(c.UNet, source, loadOptions);
                if (vae is not null) StateDictLoader.Load(c.Vae, vae, loadOptions);
                if (lora is not null)
                {
                    // As training left it: the update written into the weights (float32, as Merge computes it), hooks off.
                    lora.Merge();
                    lora.Remove();
                }
                embedding = prepared.Apply();
            }
            catch (Exception ex)
            {
                var failure = new ConceptLoadFailedException(folder, ex);
                pipeline.Broken = failure;
                throw failure;
            }
            pipeline.ConceptEmbedding = embedding;
            pipeline.ConceptLora = lora;
            lora = null;
            pipeline.Concept = new PersonalizedModel(pipeline, metadata.Token, metadata.Category, ResolveBasePath(folder, metadata.BaseModel),
                metadata.Plan ?? StagePlan.Paper, metadata.Seed, metadata.LossHistory ?? [])
            {
                BaseModelName = metadata.BaseModelName,
                BaseModelFingerprint = metadata.BaseModelFingerprint,
                DecoderAdaptation = metadata.DecoderAdaptation?.ToOptions(),
                _decoderResolution = metadata.DecoderAdaptation?.Resolution ?? 0,
            };
            return pipeline.Concept;
        }
        finally
        {
            source?.Dispose();
            vae?.Dispose();
            lora?.Dispose();
        }
    }

    /// <summary>The saved adapters, validated against the pipeline's U-Net (every key a layer, shapes, finite values);
    /// nothing is installed yet.</summary>
    private static LoraNetwork ReadLora(string folder, string metadataPath, string loraName, PersonalizationPipeline pipeline, PersonalizedModelLoadOptions options)
    {
        if (loraName.Length == 0 || Path.GetFileName(loraName) != loraName)
            throw new ModelConfigException(metadataPath, "lora_file", $"'{loraName}' must be a file name inside the concept folder");
        string path = Path.Combine(folder, loraName);
        if (!File.Exists(path)) throw new ModelConfigException(path, null, "is missing: the concept's LoRA adapters are required");
        var c = pipeline.Components;
        var lora = LoraNetwork.Load(path, c.UNet, c.TextEncoder);
        try
        {
            if (options.CheckFiniteWeights)
            {
                var bad = lora.named_parameters().Where(p => !torch.isfinite(p.parameter).all().item<bool>()).Select(p => p.name).ToArray();
                if (bad.Length > 0) throw InvalidWeightsException.NonFinite(path, bad);
            }
            return lora;
        }
        catch
        {
            lora.Dispose();
            throw;
        }
    }

    /// <summary>Runs a check of the concept's weights against the pipeline; when they do not fit, the error says which base
    /// model the concept was trained on (rather than only listing mismatched shapes).</summary>
    private static T FitsBase<T>(string metadataPath, PersonalizedModelMetadata metadata, StableDiffusionComponents c, Func<T> check)
    {
        try
        {
            return check();
        }
        catch (Exception ex) when ((ex is InvalidWeightsException { Reason: InvalidWeightsReason.Embeddings or InvalidWeightsReason.Misfit }
                                    || ex is ModelConfigException { Problem: var p } && p.Contains("another base model", StringComparison.Ordinal))
                                   && !SameSource(metadataPath, metadata, c))
        {
            string detail = ex.Message.ReplaceLineEndings(" ");
            if (detail.Length > 240) detail = detail[..240] + " …";
            throw new ModelConfigException(metadataPath, "base_model",
                $"the concept was trained on the base model '{metadata.BaseModelName ?? metadata.BaseModel}' (recorded as '{metadata.BaseModel}'), and its weights do not fit "
                + $"the pipeline's '{BaseModelIdentity.NameOf(c)}' from '{c.ModelSource}' ({detail}); load it onto the base model it was trained on "
                + "(PersonalizedModel.FindBaseModel finds it; CLI: leave out --model)", ex);
        }
    }

    /// <summary>Whether the pipeline was built from the base model the concept records (then a misfit is the concept's own
    /// damage, reported as it is).</summary>
    private static bool SameSource(string metadataPath, PersonalizedModelMetadata metadata, StableDiffusionComponents c)
    {
        string recorded = ResolveBasePath(Path.GetDirectoryName(metadataPath)!, metadata.BaseModel);
        return string.Equals(Path.GetFullPath(recorded).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(c.ModelSource).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal);
    }

    /// <summary>A concept is meant for the base model it was trained on. Names are compared always (a differing one is
    /// logged); with <see cref="PersonalizedModelLoadOptions.VerifyBaseModel"/> the pipeline's weight files are hashed and
    /// must match the recorded fingerprint.</summary>
    private static void CheckBaseModel(string metadataPath, PersonalizedModelMetadata metadata, PersonalizationPipeline pipeline,
        PersonalizedModelLoadOptions options, CancellationToken ct)
    {
        var c = pipeline.Components;
        string actualName = BaseModelIdentity.NameOf(c);
        if (options.VerifyBaseModel)
        {
            if (metadata.BaseModelFingerprint is not { } recorded)
                throw new ModelConfigException(metadataPath, "base_model_fingerprint", "records no fingerprint of its base model (saved by an older version), so it cannot be verified; load it without VerifyBaseModel");
            var actual = BaseModelIdentity.Of(c, ct);
            if (actual.Fingerprint != recorded)
                throw new ModelConfigException(metadataPath, "base_model_fingerprint",
                    $"was trained on the base model '{metadata.BaseModelName}' (weights fingerprint {recorded}), but the pipeline holds '{actual.Name}' from '{c.ModelSource}' "
                    + $"(fingerprint {actual.Fingerprint}); load the concept onto the base model it was trained on");
        }
        else if (metadata.BaseModelName is { } name && name != actualName)
        {
            PipelineLog.BaseModelNameDiffers(pipeline.LoggerFactory.CreateLogger<PersonalizedModel>(), metadata.Token, name, actualName);
        }
    }

    private static PersonalizedModelMetadata ReadMetadata(string metadataPath)
    {
        if (!File.Exists(metadataPath)) throw new ModelConfigException(metadataPath, null, "is missing: not a folder written by PersonalizedModel.SaveAsync");
        PersonalizedModelMetadata metadata;
        try
        {
            metadata = JsonFiles.Deserialize<PersonalizedModelMetadata>(File.ReadAllText(metadataPath)) ?? throw new ModelConfigException(metadataPath, null, "is empty");
        }
        catch (JsonException ex)
        {
            throw new ModelConfigException(metadataPath, null, $"is not valid ({ex.Message})", ex);
        }
        // Version 2 marks a concept with an adapted VAE, so that a version that would ignore it refuses the concept instead.
        if (metadata.FormatVersion is not (1 or VaeFormatVersion)) throw new ModelConfigException(metadataPath, "format_version", $"version {metadata.FormatVersion} is not supported");
        if ((metadata.Vae is null) != (metadata.FormatVersion == 1) || (metadata.Vae is null) != (metadata.DecoderAdaptation is null))
            throw new ModelConfigException(metadataPath, "vae", "format version 2 goes with 'vae' and 'decoder_adaptation', version 1 with neither");
        if (string.IsNullOrWhiteSpace(metadata.Token) || string.IsNullOrWhiteSpace(metadata.Category)) throw new ModelConfigException(metadataPath, "token", "token and category are required");
        return metadata;
    }
}

/// <summary>The JSON written next to a saved concept.</summary>
/// <param name="FormatVersion">1, or 2 for a concept with an adapted VAE (<see cref="Vae"/>).</param>
/// <param name="Token">Identifier token.</param>
/// <param name="Category">Category word.</param>
/// <param name="BaseModel">Base model folder (or single-file checkpoint) at training time: relative to the concept folder
/// (<c>/</c>-separated) in concepts saved by this version, absolute in older ones.</param>
/// <param name="Seed">Training seed.</param>
/// <param name="Plan">Stage plan.</param>
/// <param name="LossHistory">Loss per step.</param>
internal sealed record PersonalizedModelMetadata(int FormatVersion, string Token, string Category, string BaseModel, long Seed, StagePlan? Plan, double[]? LossHistory)
{
    /// <summary>The id the learned row was trained on (e.g. 2368 for <c>cat</c>); null in concepts saved before it was recorded.</summary>
    public int? TokenId { get; init; }

    /// <summary>The vocabulary spelling of <see cref="TokenId"/> (e.g. <c>cat&lt;/w&gt;</c>; a new token's own text); null in older concepts.</summary>
    public string? TokenSpelling { get; init; }

    /// <summary>Whether the token was added (new) or already in the vocabulary; null in older concepts.</summary>
    public ConceptTokenKind? TokenKind { get; init; }

    /// <summary>The base model's portable name (<see cref="BaseModelIdentity.Name"/>); null in older concepts.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? BaseModelName { get; init; }

    /// <summary>The fingerprint of the base model's weights (<see cref="BaseModelIdentity.Fingerprint"/>); null in older concepts.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? BaseModelFingerprint { get; init; }

    /// <summary>For a concept trained with LoRA: the file (in the concept folder) holding the adapters, which replace the
    /// <c>unet/</c> folder; null for a fine-tuned U-Net.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LoraFile { get; init; }

    /// <summary>For a concept whose VAE decoder was adapted: the folder (in the concept folder) holding that VAE; null when
    /// the concept draws through the base model's VAE.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Vae { get; init; }

    /// <summary>The settings of the decoder adaptation, with <see cref="Vae"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DecoderAdaptationRecord? DecoderAdaptation { get; init; }
}
