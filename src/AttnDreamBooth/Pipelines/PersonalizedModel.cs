using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace AttnDreamBooth.Pipelines;

/// <summary>
/// A trained concept: the learned token embedding plus the fine-tuned U-Net of the pipeline it lives in.
/// <see cref="SaveAsync(string, CancellationToken)"/> writes <c>learned_embeds.safetensors</c> (diffusers textual-inversion format), the U-Net
/// as a diffusers <c>unet/</c> folder and <c>attndreambooth.json</c>; <see cref="LoadAsync"/> puts it back onto a base pipeline.
/// </summary>
public sealed class PersonalizedModel
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
            var metadata = new PersonalizedModelMetadata(1, Token, Category, BaseModel, Seed, Plan, LossHistory.ToArray());
            AtomicFile.WriteAllText(Path.Combine(temp, MetadataFile), JsonSerializer.Serialize(metadata, Json));
            ct.ThrowIfCancellationRequested();
        });
        PipelineLog.ModelSaved(Pipeline.LoggerFactory.CreateLogger<PersonalizedModel>(), target);
    }

    /// <summary>Loads a concept saved by <see cref="SaveAsync(string, CancellationToken)"/> onto <paramref name="pipeline"/>, which must hold the
    /// same base model and no concept yet: its U-Net weights are replaced and the token is added.</summary>
    /// <exception cref="ModelConfigException">The folder is incomplete or its metadata is invalid.</exception>
    /// <exception cref="StateDictMismatchException">The U-Net weights do not fit the pipeline's U-Net.</exception>
    public static Task<PersonalizedModel> LoadAsync(string folder, PersonalizationPipeline pipeline, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(pipeline);
        return pipeline.RunExclusive(() => Load(Path.GetFullPath(folder), pipeline, ct), ct);
    }

    private static PersonalizedModel Load(string folder, PersonalizationPipeline pipeline, CancellationToken ct)
    {
        if (pipeline.Concept is not null) throw new InvalidOperationException($"The pipeline already holds the concept '{pipeline.Concept.Token}'.");
        string metadataPath = Path.Combine(folder, MetadataFile);
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
        ct.ThrowIfCancellationRequested();

        var c = pipeline.Components;
        StateDictLoader.LoadComponent(c.UNet, Path.Combine(folder, "unet"));
        var embedding = ConceptEmbedding.Load(Path.Combine(folder, EmbeddingFile), c.Tokenizer, c.TextEncoder, metadata.Token);
        pipeline.ConceptEmbedding = embedding;
        pipeline.Concept = new PersonalizedModel(pipeline, metadata.Token, metadata.Category, metadata.BaseModel, metadata.Plan ?? StagePlan.Paper, metadata.Seed, metadata.LossHistory ?? []);
        return pipeline.Concept;
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
public sealed record PersonalizedModelMetadata(int FormatVersion, string Token, string Category, string BaseModel, long Seed, StagePlan? Plan, double[]? LossHistory);
