using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// Text-to-image generation with a Stable Diffusion 1.x/2.x model, optionally with a LoRA (<see cref="LoadLora"/>) or a
/// textual-inversion embedding (<see cref="LoadTextualInversion"/>) loaded; no training. The personalization pipeline
/// renders through the same code.
/// </summary>
/// <example>
/// <code>
/// using var pipeline = StableDiffusionPipeline.FromPretrained("models/stable-diffusion-2-1-base");
/// var images = await pipeline.GenerateAsync("a photo of a dog on the beach", new GenerationOptions { Seed = 42 });
/// images[0].SavePng("dog.png");
/// </code>
/// </example>
public sealed class StableDiffusionPipeline : IDisposable
{
    internal const string GenerationAdvice =
        "Lower GenerationOptions.BatchSize, Width or Height, or decode with less memory (Components.Vae.UseSlicing, Components.Vae.EnableTiling()).";

    private readonly ILogger _logger;
    private readonly PipelineGate _gate = new("The pipeline is already generating; wait for that call to finish.",
        "The pipeline is still generating; cancel that call and await it before disposing the pipeline.");
    private ConceptEmbedding? _embedding;

    internal StableDiffusionPipeline(StableDiffusionComponents components, ILoggerFactory? loggerFactory)
    {
        Components = components;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<StableDiffusionPipeline>();
    }

    /// <summary>Loads every component of a diffusers folder (or Hugging Face cache entry) as
    /// <see cref="StableDiffusionComponents.Load"/> does.</summary>
    /// <param name="modelFolder">The diffusers folder.</param>
    /// <param name="device">Where every module lives (CPU by default).</param>
    /// <param name="dtype">The weights' precision (diffusers' <c>torch_dtype</c>): Float32 (default), BFloat16, or
    /// Float16 on a GPU. Latents and the sampler stay float32.</param>
    /// <param name="limits">Bounds on what the model's files (and later LoRA and embedding files) may allocate (default
    /// <see cref="ResourceLimits.Default"/>).</param>
    /// <param name="loggerFactory">Logging (default: none).</param>
    /// <param name="ct">Checked between components.</param>
    /// <exception cref="ModelConfigException">The folder, a config or a weight file is missing or invalid.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not Float32, Float16 or BFloat16.</exception>
    /// <exception cref="InvalidOperationException">Float16 was asked for on the CPU.</exception>
    public static StableDiffusionPipeline FromPretrained(string modelFolder, torch.Device? device = null, torch.ScalarType? dtype = null,
        ResourceLimits? limits = null, ILoggerFactory? loggerFactory = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFolder);
        device ??= torch.CPU;
        CheckDType(dtype, device);
        var components = StableDiffusionComponents.Load(modelFolder, device, limits, loggerFactory, ct);
        return Create(components, dtype, loggerFactory);
    }

    /// <summary>Loads the networks from an original-layout single-file checkpoint with the architecture, tokenizer and
    /// scheduler of <paramref name="configFolder"/>, as <see cref="StableDiffusionComponents.LoadSingleFile"/> does.</summary>
    /// <param name="checkpointPath">The <c>.safetensors</c> file (pickles are refused).</param>
    /// <param name="configFolder">A diffusers folder of the same model family; its weights are not read.</param>
    /// <param name="device">Where every module lives (CPU by default).</param>
    /// <param name="dtype">The weights' precision (see <see cref="FromPretrained"/>).</param>
    /// <param name="options">Prediction type, image size, EMA weights, keys to ignore.</param>
    /// <param name="limits">Bounds on what the files may allocate (default <see cref="ResourceLimits.Default"/>).</param>
    /// <param name="loggerFactory">Logging (default: none).</param>
    /// <param name="ct">Checked between components.</param>
    public static StableDiffusionPipeline FromSingleFile(string checkpointPath, string configFolder, torch.Device? device = null,
        torch.ScalarType? dtype = null, SingleFileLoadOptions? options = null, ResourceLimits? limits = null, ILoggerFactory? loggerFactory = null,
        CancellationToken ct = default)
    {
        device ??= torch.CPU;
        CheckDType(dtype, device);
        var components = StableDiffusionComponents.LoadSingleFile(checkpointPath, configFolder, device, options, limits, loggerFactory, ct);
        return Create(components, dtype, loggerFactory);
    }

    private static StableDiffusionPipeline Create(StableDiffusionComponents components, torch.ScalarType? dtype, ILoggerFactory? loggerFactory)
    {
        if (dtype is { } d && d != torch.ScalarType.Float32) components.ConvertTo(d);
        return new StableDiffusionPipeline(components, loggerFactory);
    }

    /// <summary>Rejects precisions the pipeline cannot run in on <paramref name="device"/>.</summary>
    internal static void CheckDType(torch.ScalarType? dtype, torch.Device device)
    {
        if (dtype is not (null or torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "The pipeline runs in Float32, Float16 or BFloat16.");
        // Measured on the tiny model: libtorch's CPU float16 kernels render 5–6× slower than float32, bfloat16 as fast.
        if (dtype == torch.ScalarType.Float16 && device.type == DeviceType.CPU)
            throw new InvalidOperationException("Float16 inference is for GPUs: on the CPU libtorch computes it about 6 times slower than float32; use BFloat16 there (same memory).");
    }

    /// <summary>The loaded model components.</summary>
    public StableDiffusionComponents Components { get; }

    /// <summary>The bounds the model was loaded with; LoRA and embedding files are read under them too.</summary>
    public ResourceLimits ResourceLimits => Components.ResourceLimits;

    /// <summary>The tokens of the loaded textual-inversion embedding (empty when none is loaded).</summary>
    public IReadOnlyList<string> LoadedTokens => _embedding?.Tokens ?? [];

    /// <summary>Reads a LoRA file onto the U-Net and the text encoder and installs it at <paramref name="scale"/>
    /// (<see cref="StableDiffusionComponents.LoadLora"/>).</summary>
    /// <exception cref="IO.InvalidWeightsException">The file does not fit the model.</exception>
    public LoraNetwork LoadLora(string loraPath, double scale = 1.0, LoraLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(loraPath);
        _gate.ThrowIfDisposed(this);
        return Components.LoadLora(loraPath, scale, options);
    }

    /// <summary>
    /// Loads a textual-inversion embedding (diffusers <c>learned_embeds.safetensors</c> or an A1111 safetensors
    /// embedding) so prompts can use its token; a multi-vector embedding's name expands to all its tokens
    /// (<c>name name_1 …</c>, as diffusers does). Returns the tokens added. One embedding file per pipeline.
    /// </summary>
    /// <param name="path">The safetensors file.</param>
    /// <param name="token">Renames the embedding (only for files holding one entry).</param>
    /// <exception cref="InvalidOperationException">An embedding is already loaded, or a generation is running.</exception>
    /// <exception cref="InvalidWeightsException">The file is malformed or its rows do not fit the text encoder.</exception>
    /// <exception cref="ConceptTokenException">The file names a special token.</exception>
    public IReadOnlyList<string> LoadTextualInversion(string path, string? token = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        return _gate.RunHere(() =>
        {
            if (_embedding is not null)
                throw new InvalidOperationException($"This pipeline already holds the embedding '{_embedding.Tokens[0]}'; load one embedding file per pipeline.");
            using var limits = ResourceLimits.Use(ResourceLimits);
            _embedding = ConceptEmbedding.Load(path, Components.Tokenizer, Components.TextEncoder, token);
            return _embedding.Tokens;
        }, this, CancellationToken.None);
    }

    /// <summary>The prompt as the text encoder sees it: a loaded multi-vector embedding's name expanded to all its tokens.</summary>
    public string ExpandPrompt(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return _embedding?.ExpandPrompt(prompt) ?? prompt;
    }

    /// <summary>Renders <paramref name="prompt"/> (<see cref="GenerationOptions.BatchSize"/> images, image i from seed
    /// <c>Seed + i</c>) on a dedicated thread.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (<see cref="GenerationOptions.Validate"/>).</exception>
    /// <exception cref="Schedulers.SchedulerException">The sampler name is unknown.</exception>
    /// <exception cref="OperationCanceledException">Cancelled between denoising steps.</exception>
    /// <exception cref="InvalidOperationException">A generation is already running on this pipeline.</exception>
    public Task<IReadOnlyList<GeneratedImage>> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken ct = default) =>
        GenerateAsync(prompt, options, progress: null, ct);

    /// <summary>Renders <paramref name="prompt"/> as <see cref="GenerateAsync(string, GenerationOptions?, CancellationToken)"/>,
    /// reporting a <see cref="GenerationProgress"/> after every denoising step (on the generation thread; the images do not
    /// depend on it).</summary>
    public Task<IReadOnlyList<GeneratedImage>> GenerateAsync(string prompt, GenerationOptions? options, IProgress<GenerationProgress>? progress,
        CancellationToken ct = default)
    {
        options = GenerationOptions.ForCall(prompt, options);
        return _gate.Run(() => GenerateUngated(prompt, options, progress, ct), this, ct);
    }

    /// <summary>Renders as <see cref="GenerateAsync(string, GenerationOptions?, IProgress{GenerationProgress}?, CancellationToken)"/>
    /// does, but on the calling thread. Call it outside any <c>torch.NewDisposeScope()</c> of your own.</summary>
    public IReadOnlyList<GeneratedImage> Generate(string prompt, GenerationOptions? options = null, IProgress<GenerationProgress>? progress = null,
        CancellationToken ct = default)
    {
        options = GenerationOptions.ForCall(prompt, options);
        return _gate.RunHere(() => GenerateUngated(prompt, options, progress, ct), this, ct);
    }

    private IReadOnlyList<GeneratedImage> GenerateUngated(string prompt, GenerationOptions options, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        using var limits = ResourceLimits.Use(ResourceLimits);
        var heatmapIds = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string token in options.HeatmapTokens) heatmapIds[token] = ResolveHeatmapToken(token);
        return GenerateExpanded(ExpandPrompt(prompt), _embedding, options, heatmapIds, _logger, progress, ct);
    }

    private long ResolveHeatmapToken(string token)
    {
        if (_embedding is not null)
        {
            int row = _embedding.Tokens.ToList().IndexOf(token);
            if (row >= 0) return _embedding.TokenIds[row];
        }
        return FirstTokenId(Components.Tokenizer, token);
    }

    /// <summary>The id a heatmap token is recorded by: its first sub-token ("cat" finds cat&lt;/w&gt;, not the word-start piece).</summary>
    /// <exception cref="ArgumentException">The token tokenizes to nothing.</exception>
    internal static long FirstTokenId(ClipTokenizer tokenizer, string token)
    {
        var ids = tokenizer.EncodeWithoutSpecialTokens(token);
        if (ids.Count == 0) throw new ArgumentException($"The heatmap token '{token}' tokenizes to nothing.", nameof(token));
        return ids[0];
    }

    /// <summary>
    /// The one generation path: renders an already expanded prompt with <paramref name="concept"/> spliced into the text
    /// encoder (null: the plain encoder), recording the heatmaps of <paramref name="heatmapTokenIds"/>. The caller holds
    /// the pipeline exclusively and applies its resource limits.
    /// </summary>
    internal IReadOnlyList<GeneratedImage> GenerateExpanded(string expandedPrompt, ConceptEmbedding? concept, GenerationOptions options,
        IReadOnlyDictionary<string, long> heatmapTokenIds, ILogger logger, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        PipelineLog.Generating(logger, options.BatchSize, expandedPrompt, SamplerSelection.Describe(options), options.Steps, options.GuidanceScale);
        string what = $"generating {options.BatchSize} image(s) of {options.Width ?? Components.DefaultResolution}×{options.Height ?? Components.DefaultResolution} pixels";
        return TensorAllocation.Guard(what, GenerationAdvice,
            () => TextToImageGenerator.Generate(Components, concept, expandedPrompt, options, heatmapTokenIds, ct, progress));
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">A generation is still running: cancel it and await it first.</exception>
    public void Dispose()
    {
        if (!_gate.Dispose()) return;
        _embedding?.Dispose();
        Components.Dispose();
    }
}
