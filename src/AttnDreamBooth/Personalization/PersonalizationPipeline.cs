using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// AttnDreamBooth personalization on a Stable Diffusion 1.x/2.x model: <see cref="TrainAsync"/> learns a concept
/// token and fine-tunes the U-Net in three stages; <see cref="GenerateAsync(string, GenerationOptions?, CancellationToken)"/> renders prompts with it.
/// </summary>
/// <example>
/// <code>
/// using var pipeline = PersonalizationPipeline.FromPretrained("models/stable-diffusion-2-1-base")
///     .OnDevice("cuda").WithStages(StagePlan.Paper).WithSeed(42).Build();
/// var model = await pipeline.TrainAsync(Concept.FromFolder("photos/dog", category: "dog"), progress);
/// await model.SaveAsync("out/my-dog");
/// var images = await pipeline.GenerateAsync("a {} as a knight riding a horse");
/// </code>
/// </example>
public sealed class PersonalizationPipeline : IDisposable
{
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly PipelineGate _gate = new("The pipeline is already training or generating; wait for that call to finish.",
        "The pipeline is still training or generating; cancel that call and await it before disposing the pipeline.");
    private bool _trainingStarted;

    internal PersonalizationPipeline(StableDiffusionComponents components, StagePlan plan, TrainingOptions training, ILoggerFactory loggerFactory)
    {
        Components = components;
        Renderer = new StableDiffusionPipeline(components, loggerFactory);
        Plan = plan;
        TrainingOptions = training;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<PersonalizationPipeline>();
    }

    /// <summary>Starts configuring a pipeline on the diffusers folder (or Hugging Face cache entry) at <paramref name="modelFolder"/>.</summary>
    public static PersonalizationPipelineBuilder FromPretrained(string modelFolder) => new(modelFolder);

    /// <summary>Starts configuring a pipeline on an original-layout SD 1.x/2.x single-file checkpoint, with the
    /// architecture, tokenizer and scheduler from <paramref name="configFolder"/> (see
    /// <see cref="StableDiffusionComponents.LoadSingleFile"/>).</summary>
    /// <param name="checkpointPath">The <c>.safetensors</c> file.</param>
    /// <param name="configFolder">A diffusers folder of the same family (weights not needed).</param>
    /// <param name="options">Prediction type and image size when the config folder should not decide them, EMA weights,
    /// extra keys to ignore.</param>
    public static PersonalizationPipelineBuilder FromSingleFile(string checkpointPath, string configFolder,
        IO.SingleFile.SingleFileLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(configFolder);
        return new PersonalizationPipelineBuilder((device, loggers, checkFinite, limits, ct) =>
            StableDiffusionComponents.LoadSingleFileChecked(checkpointPath, configFolder, device, options, loggers, checkFinite, limits, ct));
    }

    /// <summary>The loaded model components.</summary>
    public StableDiffusionComponents Components { get; }

    /// <summary>The text-to-image pipeline on <see cref="Components"/> that every render of this pipeline goes through
    /// (entered under this pipeline's own gate; it holds no embedding of its own).</summary>
    internal StableDiffusionPipeline Renderer { get; }

    /// <summary>The stage plan used by <see cref="TrainAsync"/>.</summary>
    public StagePlan Plan { get; }

    /// <summary>Seed, checkpoints, caching and validation settings.</summary>
    public TrainingOptions TrainingOptions { get; }

    /// <summary>The bounds on what untrusted files may make this pipeline allocate or read
    /// (<see cref="PersonalizationPipelineBuilder.WithResourceLimits"/>); every call of the pipeline, and
    /// <see cref="PersonalizedModel.LoadAsync(string, PersonalizationPipeline, CancellationToken)"/> and
    /// <see cref="PersonalizedModel.ImportAsync(ConceptImport, PersonalizationPipeline, CancellationToken)"/> on it, apply them.</summary>
    public IO.ResourceLimits ResourceLimits => Components.ResourceLimits;

    /// <summary>The concept this pipeline was trained on or loaded with, or null while it is the base model.</summary>
    public PersonalizedModel? Concept { get; internal set; }

    internal ConceptEmbedding? ConceptEmbedding { get; set; }

    /// <summary>For a concept whose U-Net stages trained LoRA adapters (or one loaded from such a saved concept): the
    /// adapters, already merged into <see cref="StableDiffusionComponents.UNet"/> and off their hooks. Saving writes them
    /// instead of the whole U-Net, and the LoRA export writes them as they are.</summary>
    internal Models.Lora.LoraNetwork? ConceptLora { get; set; }

    /// <summary>Set when a concept load failed half-way: the weights are undefined and every later call refuses.</summary>
    internal Exception? Broken { get; set; }

    /// <summary>
    /// Trains <paramref name="concept"/> with the plan's stages on a dedicated thread. All images are validated first.
    /// With <paramref name="resumeFrom"/> (a checkpoint folder, or the checkpoint directory to take its newest; default:
    /// the builder's <see cref="PersonalizationPipelineBuilder.ResumeFrom"/>), training continues exactly where that
    /// checkpoint left off.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled; the last checkpoint stays intact.</exception>
    /// <exception cref="StableDiffusion.NonFiniteValuesException">The loss became NaN or infinite.</exception>
    /// <exception cref="InvalidOperationException">The pipeline already holds a concept or is busy.</exception>
    /// <exception cref="IO.TensorAllocationException">A step needed more memory than libtorch could allocate.</exception>
    /// <remarks>When a stage of the plan uses prior preservation, the class images are prepared first (see
    /// <see cref="PrepareClassImagesAsync"/>), reporting to <paramref name="classImageProgress"/>.</remarks>
    public Task<PersonalizedModel> TrainAsync(Concept concept, IProgress<TrainingProgress>? progress = null, CancellationToken ct = default, string? resumeFrom = null,
        IProgress<ClassImageProgress>? classImageProgress = null)
    {
        ArgumentNullException.ThrowIfNull(concept);
        return RunExclusive(() => IO.TensorAllocation.Guard("training", TrainingAdvice,
            () => TrainCore(concept, progress, classImageProgress, resumeFrom ?? TrainingOptions.ResumeFrom, ct)), ct);
    }

    /// <summary>
    /// Trains as <see cref="TrainAsync"/> does, but on the calling thread, so a host chooses the thread (or scheduler) the
    /// run occupies; progress is reported on that thread. Call it outside any <c>torch.NewDisposeScope()</c> of your own
    /// (the concept's tensors outlive the call).
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled; the last checkpoint stays intact.</exception>
    /// <exception cref="StableDiffusion.NonFiniteValuesException">The loss became NaN or infinite.</exception>
    /// <exception cref="InvalidOperationException">The pipeline already holds a concept, is busy, or was built for
    /// half-precision inference.</exception>
    public PersonalizedModel Train(Concept concept, IProgress<TrainingProgress>? progress = null, string? resumeFrom = null,
        IProgress<ClassImageProgress>? classImageProgress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(concept);
        return RunExclusiveHere(() => IO.TensorAllocation.Guard("training", TrainingAdvice,
            () => TrainCore(concept, progress, classImageProgress, resumeFrom ?? TrainingOptions.ResumeFrom, ct)), ct);
    }

    /// <summary>
    /// Generates the plan's prior-preservation class images of <paramref name="category"/> with the base model, or reuses
    /// them from <see cref="Personalization.TrainingOptions.ClassImageDirectory"/> when a previous run left a complete set with
    /// the same settings (an interrupted set is continued). <see cref="TrainAsync"/> does this itself; call it first to
    /// prepare or inspect the images separately.
    /// </summary>
    /// <exception cref="InvalidOperationException">The plan has no <see cref="StagePlan.PriorPreservation"/>, the pipeline
    /// already holds a concept (class images come from the base model), or it is busy.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the images written so far stay and are reused.</exception>
    public Task<ClassImageSet> PrepareClassImagesAsync(string category, IProgress<ClassImageProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(category);
        return RunExclusive(() => IO.TensorAllocation.Guard("generating class images", GenerationAdvice, () => PrepareClassImages(category, progress, ct)), ct);
    }

    private ClassImageSet PrepareClassImages(string category, IProgress<ClassImageProgress>? progress, CancellationToken ct)
    {
        var options = Plan.PriorPreservation ?? throw new InvalidOperationException("The stage plan has no prior-preservation settings (StagePlan.PriorPreservation).");
        if (Concept is not null) throw new InvalidOperationException("Class images come from the base model, but this pipeline already holds a concept.");
        int resolution = TrainingOptions.Data.Images.Resolution > 0 ? TrainingOptions.Data.Images.Resolution : Components.DefaultResolution;
        return ClassImageCache.Prepare(options, category, Path.GetFullPath(Components.ModelSource), resolution, TrainingOptions.ClassImageDirectory,
            (p, o, token) => GenerateCore(p, o, token), progress, _logger, ct);
    }

    /// <summary>
    /// Renders <paramref name="prompt"/>; <c>{}</c> expands to "[V] category" of the current concept.
    /// </summary>
    public Task<IReadOnlyList<GeneratedImage>> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken ct = default) =>
        GenerateAsync(prompt, options, progress: null, ct);

    /// <summary>
    /// Renders <paramref name="prompt"/> as <see cref="GenerateAsync(string, GenerationOptions?, CancellationToken)"/>, reporting
    /// a <see cref="GenerationProgress"/> after every denoising step (on the generation thread; results do not depend on it).
    /// </summary>
    public Task<IReadOnlyList<GeneratedImage>> GenerateAsync(string prompt, GenerationOptions? options, IProgress<GenerationProgress>? progress,
        CancellationToken ct = default)
    {
        options = GenerationOptions.ForCall(prompt, options);
        return RunExclusive(() => GenerateCore(prompt, options, ct, progress), ct);
    }

    /// <summary>
    /// Renders <paramref name="prompt"/> as <see cref="GenerateAsync(string, GenerationOptions?, IProgress{GenerationProgress}?, CancellationToken)"/>
    /// does, but on the calling thread (progress and <see cref="GenerationOptions.OnStep"/> are called on it). Call it
    /// outside any <c>torch.NewDisposeScope()</c> of your own.
    /// </summary>
    public IReadOnlyList<GeneratedImage> Generate(string prompt, GenerationOptions? options = null, IProgress<GenerationProgress>? progress = null,
        CancellationToken ct = default)
    {
        options = GenerationOptions.ForCall(prompt, options);
        return RunExclusiveHere(() => GenerateCore(prompt, options, ct, progress), ct);
    }

    /// <summary>Expands <c>{}</c> to the concept's "[V] category" (the official convention; just "[V]" for an imported
    /// concept without a category), <c>{token}</c> and <c>{category}</c> as <see cref="Personalization.Concept.ExpandPrompt"/>
    /// does, and a multi-vector embedding's name to all its tokens (<c>name name_1 …</c>, as diffusers does).</summary>
    /// <exception cref="InvalidOperationException">The prompt uses a placeholder but no concept is loaded.</exception>
    /// <exception cref="ArgumentException">The prompt holds another placeholder or a stray brace.</exception>
    public string ExpandPrompt(string prompt)
    {
        prompt = PromptPlaceholders.Expand(prompt, Concept?.Token, Concept?.Category ?? "");
        return ConceptEmbedding?.ExpandPrompt(prompt) ?? prompt;
    }

    internal IReadOnlyList<GeneratedImage> GenerateCore(string prompt, GenerationOptions options, CancellationToken ct,
        IProgress<GenerationProgress>? progress = null)
    {
        string expanded = ExpandPrompt(prompt);
        var heatmapIds = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string token in options.HeatmapTokens)
        {
            // "{}" is the prompt shorthand for the concept: its map is stored under the identifier a caller looks it up by.
            string key = token == "{}" && Concept is not null ? Concept.Token : token;
            heatmapIds[key] = ResolveHeatmapToken(token);
        }
        return Renderer.GenerateExpanded(expanded, ConceptEmbedding, options, heatmapIds, _logger, progress, ct);
    }

    private const string TrainingAdvice =
        "Lower the batch size or the image resolution, or turn on TrainingOptions.GradientCheckpointing, FrozenWeightsDType, " +
        "ReleaseVaeDuringTraining, ReleaseTextEncoderDuringTraining or EightBitOptimizerStates; checkpoints written so far are kept.";

    private const string GenerationAdvice = StableDiffusionPipeline.GenerationAdvice;

    private long ResolveHeatmapToken(string token)
    {
        // The concept's row is bound to a recorded id (ConceptTokenIdentity); "cat" must find cat</w>, not the word-start piece.
        if ((token == "{}" || token == Concept?.Token) && Concept is not null && ConceptEmbedding is not null) return ConceptEmbedding.TokenIds[0];
        return StableDiffusionPipeline.FirstTokenId(Components.Tokenizer, token);
    }

    private PersonalizedModel TrainCore(Concept concept, IProgress<TrainingProgress>? progress, IProgress<ClassImageProgress>? classImageProgress,
        string? resumeFrom, CancellationToken ct)
    {
        if (Components.UNet.parameters().First().dtype != torch.ScalarType.Float32)
            throw new InvalidOperationException($"This pipeline holds its weights in {Components.UNet.parameters().First().dtype} for inference "
                + "(PersonalizationPipelineBuilder.WithDType); build one in float32 to train (TrainingOptions.FrozenWeightsDType saves memory during training).");
        if (Plan.IdentifierToken is { } planToken) concept = concept.WithToken(planToken);
        if (Concept is not null) throw new InvalidOperationException($"This pipeline already holds the concept '{Concept.Token}'; build a new pipeline to train another.");
        if (_trainingStarted) throw new InvalidOperationException("A training run on this pipeline already started and failed or was cancelled, which leaves its weights and tokenizer changed; build a new pipeline (and pass resumeFrom to continue from a checkpoint).");
        PersonalizationTrainer.CheckCompatible(Plan, TrainingOptions);
        // The same rule that saving records and loading checks (special tokens are refused here, before any work).
        var binding = ConceptTokenIdentity.Resolve(Components.Tokenizer, concept.Token);
        bool ownRow = Plan.EmbeddingInitialization == EmbeddingInitialization.IdentifierToken;
        if (ownRow && binding.Kind != ConceptTokenKind.Existing)
            throw new ArgumentException($"The plan keeps the identifier token's own embedding (EmbeddingInitialization.IdentifierToken), but '{concept.Token}' "
                + "is not a single token of the vocabulary; use an existing rare token such as \"sks\".", nameof(concept));
        var imageOptions = TrainingOptions.Data.Images;
        if (imageOptions.Resolution <= 0) imageOptions = imageOptions with { Resolution = Components.DefaultResolution };
        // Every image is decoded and validated before anything is trained.
        var images = ConceptImageSet.Load(concept, imageOptions, ResourceLimits);
        var imageHashes = concept.Images.Select(s => System.Security.Cryptography.SHA256.HashData(s.ReadAllBytes(ResourceLimits.MaxImageFileBytes))).ToArray();
        PipelineLog.ImagesValidated(_logger, images.Count, concept.Token, concept.Category);
        ct.ThrowIfCancellationRequested();
        // Before anything changes: class images come from the base model, and a cancelled generation leaves the pipeline usable.
        var classImages = Plan.UsesPriorPreservation ? PrepareClassImages(concept.Category, classImageProgress, ct) : null;

        _trainingStarted = true;
        var conceptToken = binding.Kind == ConceptTokenKind.Existing
            ? ConceptToken.Existing(concept.Token, ownRow ? null : concept.Category)
            : ConceptToken.New(concept.Token, concept.Category);
        var embedding = ConceptEmbedding.Create(Components.Tokenizer, Components.TextEncoder, conceptToken);
        string prompt = concept.TrainingPrompt;
        var categoryIds = Components.Tokenizer.EncodeWithoutSpecialTokens(concept.Category);
        if (categoryIds.Count == 0) throw new ArgumentException($"The category '{concept.Category}' tokenizes to nothing.", nameof(concept));
        string fingerprint = PersonalizationTrainer.Fingerprint(Components.ModelSource, concept.Token, concept.Category, prompt,
            classImages is null ? imageHashes : imageHashes.Concat(classImages.Hashes), Plan, TrainingOptions);
        var prior = classImages is null ? null : new PriorPreservationData(classImages.Prompt, classImages.Count,
            i => ConceptImageTransform.ToTensor(ConceptImageTransform.Augment(classImages.Images[i], imageOptions.Resolution, ImageAugmentationOptions.None, null)));
        var trainer = new PersonalizationTrainer(Components, embedding, Plan, TrainingOptions, _logger, progress,
            (p, o, token) => GenerateCore(p, o, token)) { Category = concept.Category };
        ConceptEmbedding = embedding;
        Concept = new PersonalizedModel(this, concept.Token, concept.Category, Components.ModelSource, Plan, TrainingOptions.Seed, trainer.LossHistory);
        try
        {
            trainer.Run(prompt, categoryIds[0], images.Count, (i, random) => images.GetSample(i, random), fingerprint, resumeFrom, ct, prior);
            ConceptLora = trainer.TrainedLora;
        }
        catch
        {
            // A failed run leaves the pipeline without a usable concept; the checkpoints on disk stay.
            Concept = null;
            ConceptEmbedding = null;
            throw;
        }
        return Concept;
    }

    internal Task<T> RunExclusive<T>(Func<T> work, CancellationToken ct) => _gate.Run(() => WithLimits(work), this, ct, Refusal);

    /// <summary>As <see cref="RunExclusive{T}"/>, on the calling thread.</summary>
    internal T RunExclusiveHere<T>(Func<T> work, CancellationToken ct) => _gate.RunHere(() => WithLimits(work), this, ct, Refusal);

    private Exception? Refusal() => Broken is null ? null
        : new InvalidOperationException("A concept load failed while copying weights, which left this pipeline's U-Net undefined; build a new pipeline.", Broken);

    private T WithLimits<T>(Func<T> work)
    {
        // Everything the call reads (checkpoints, concepts, class images, reloaded weights) is checked against the pipeline's limits.
        using var limits = IO.ResourceLimits.Use(ResourceLimits);
        return work();
    }

    internal ILoggerFactory LoggerFactory => _loggerFactory;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">A training or generation call is still running: cancel it and await it
    /// first (disposing would free tensors that call is using).</exception>
    public void Dispose()
    {
        if (!_gate.Dispose()) return;
        ConceptEmbedding?.Dispose();
        ConceptLora?.Dispose();
        Components.Dispose();
    }
}
