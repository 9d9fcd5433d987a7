using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A trained concept: the learned token embedding plus the fine-tuned U-Net of the pipeline it lives in.
/// <see cref="SaveAsync(string, CancellationToken)"/> writes <c>learned_embeds.safetensors</c> (diffusers textual-inversion format), the U-Net
/// as a diffusers <c>unet/</c> folder and <c>attndreambooth.json</c>; <see cref="LoadAsync(string, PersonalizationPipeline, CancellationToken)"/> puts it back onto a base pipeline.
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

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

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

    /// <summary>The base model the concept was trained on: its diffusers folder, or its single-file checkpoint.</summary>
    public string BaseModel { get; }

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
        string target = Path.GetFullPath(folder);
        string parent = Path.GetDirectoryName(target.TrimEnd(Path.DirectorySeparatorChar)) ?? ".";
        IO.OutputFolders.CleanStaleTemporaries(parent);
        if (!overwrite && Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IO.OutputFolderException(target, "already exists and is not empty (a concept of another run?); choose another folder or pass overwrite: true (CLI --force)");
        AtomicFile.WriteDirectory(target, temp =>
        {
            Pipeline.ConceptEmbedding!.Save(Path.Combine(temp, EmbeddingFile));
            string unetFolder = Path.Combine(temp, "unet");
            Directory.CreateDirectory(unetFolder);
            File.Copy(Pipeline.Components.Folder.ConfigPath("unet"), Path.Combine(unetFolder, "config.json"));
            ct.ThrowIfCancellationRequested();
            var state = Pipeline.Components.UNet.state_dict();
            SafetensorsWriter.Write(Path.Combine(unetFolder, "diffusion_pytorch_model.safetensors"), state, new Dictionary<string, string> { ["format"] = "pt" });
            // The exact identity the row was trained on, so a reload binds it to the same id (ConceptTokenIdentity).
            var embedding = Pipeline.ConceptEmbedding!;
            int tokenId = embedding.TokenIds[0];
            var metadata = new PersonalizedModelMetadata(1, Token, Category, BaseModel, Seed, Plan, LossHistory.ToArray())
            {
                TokenId = tokenId,
                TokenSpelling = Pipeline.Components.Tokenizer.GetToken(tokenId),
                TokenKind = embedding.Kinds[0],
            };
            AtomicFile.WriteAllText(Path.Combine(temp, MetadataFile), JsonSerializer.Serialize(metadata, Json));
            ct.ThrowIfCancellationRequested();
        });
        PipelineLog.ModelSaved(Pipeline.LoggerFactory.CreateLogger<PersonalizedModel>(), target);
    }

    /// <summary>Loads a concept saved by <see cref="SaveAsync(string, CancellationToken)"/> onto <paramref name="pipeline"/>, which must hold the
    /// same base model and no concept yet: its U-Net weights are replaced and the token is added. A transaction:
    /// every file is validated first (see <see cref="LoadAsync(string, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>).</summary>
    /// <exception cref="ModelConfigException">The folder is incomplete, its metadata is invalid, or it belongs to another base model.</exception>
    /// <exception cref="StateDictMismatchException">The U-Net weights do not fit the pipeline's U-Net.</exception>
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
    /// <exception cref="StateDictMismatchException">The U-Net weights do not fit the pipeline's U-Net.</exception>
    /// <exception cref="NonFiniteWeightsException">A U-Net weight or the embedding holds NaN or infinity.</exception>
    /// <exception cref="LearnedEmbeddingsFormatException">The embedding's width is not the text encoder's.</exception>
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
        using var prepared = ConceptEmbedding.Prepare(embeddingPath, c.Tokenizer, c.TextEncoder, metadata.Token, readOptions, binding);
        ct.ThrowIfCancellationRequested();

        string unetFolder = Path.Combine(folder, "unet");
        if (!Directory.Exists(unetFolder)) throw new ModelConfigException(unetFolder, null, "is missing: the concept's fine-tuned U-Net is required");
        ConceptUNetConfig.CheckMatchesBase(Path.Combine(unetFolder, "config.json"), c.Folder.ConfigPath("unet"));
        using var source = StateDictSource.OpenComponent(unetFolder);
        var loadOptions = new StateDictLoadOptions { CheckFinite = options.CheckFiniteWeights };
        StateDictLoader.Validate(c.UNet, source, loadOptions);
        ct.ThrowIfCancellationRequested();

        // Apply: no cancellation from here on, a half-applied concept is worse than a late one.
        ConceptEmbedding embedding;
        try
        {
            StateDictLoader.Load(c.UNet, source, loadOptions);
            embedding = prepared.Apply();
        }
        catch (Exception ex)
        {
            var failure = new ConceptLoadFailedException(folder, ex);
            pipeline.Broken = failure;
            throw failure;
        }
        pipeline.ConceptEmbedding = embedding;
        pipeline.Concept = new PersonalizedModel(pipeline, metadata.Token, metadata.Category, metadata.BaseModel, metadata.Plan ?? StagePlan.Paper, metadata.Seed, metadata.LossHistory ?? []);
        return pipeline.Concept;
    }

    private static PersonalizedModelMetadata ReadMetadata(string metadataPath)
    {
        if (!File.Exists(metadataPath)) throw new ModelConfigException(metadataPath, null, "is missing: not a folder written by PersonalizedModel.SaveAsync");
        PersonalizedModelMetadata metadata;
        try
        {
            metadata = JsonSerializer.Deserialize<PersonalizedModelMetadata>(File.ReadAllText(metadataPath), Json) ?? throw new ModelConfigException(metadataPath, null, "is empty");
        }
        catch (JsonException ex)
        {
            throw new ModelConfigException(metadataPath, null, $"is not valid ({ex.Message})", ex);
        }
        if (metadata.FormatVersion != 1) throw new ModelConfigException(metadataPath, "FormatVersion", $"version {metadata.FormatVersion} is not supported");
        if (string.IsNullOrWhiteSpace(metadata.Token) || string.IsNullOrWhiteSpace(metadata.Category)) throw new ModelConfigException(metadataPath, "Token", "token and category are required");
        return metadata;
    }
}

/// <summary>The JSON written next to a saved concept.</summary>
/// <param name="FormatVersion">1.</param>
/// <param name="Token">Identifier token.</param>
/// <param name="Category">Category word.</param>
/// <param name="BaseModel">Base model folder (or single-file checkpoint) at training time.</param>
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
    [JsonConverter(typeof(JsonStringEnumConverter<ConceptTokenKind>))]
    public ConceptTokenKind? TokenKind { get; init; }
}
