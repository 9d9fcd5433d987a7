using AttnDreamBooth.Imaging;
using AttnDreamBooth.Models.Clip;
using TorchSharp;

namespace AttnDreamBooth.Evaluation;

/// <summary>
/// Scores a personalised concept with CLIP the way the paper does (the Textual Inversion protocol): identity — do the
/// generated images show the subject of the training photos — and text alignment — do they follow their prompts.
/// Give it image sets (<see cref="ScoreAsync"/>), or a personalised pipeline to generate them with the protocol's fixed
/// seed schedule first (<see cref="EvaluateAsync"/>).
/// </summary>
public sealed partial class ConceptEvaluator : IDisposable
{
    private readonly bool _ownsClip;

    /// <summary>Creates an evaluator over a CLIP model (with a text tower for the text score) and its preprocessing.</summary>
    internal ConceptEvaluator(ClipModel clip, ClipImageProcessor? processor = null)
        : this(clip, processor, ownsClip: false)
    {
    }

    private ConceptEvaluator(ClipModel clip, ClipImageProcessor? processor, bool ownsClip)
    {
        Clip = clip ?? throw new ArgumentNullException(nameof(clip));
        Processor = processor ?? new ClipImageProcessor();
        _ownsClip = ownsClip;
    }

    /// <summary>Loads a transformers <c>CLIPModel</c> folder (safetensors weights, with its <c>CLIPProcessor</c> files:
    /// <c>vocab.json</c>, <c>merges.txt</c>, <c>preprocessor_config.json</c>) onto <paramref name="device"/>; the
    /// evaluator owns the model and releases it in <see cref="Dispose"/>.</summary>
    /// <exception cref="IO.ModelConfigException">The folder or one of its configs is incomplete or invalid.</exception>
    /// <exception cref="IO.InvalidWeightsException">The weights do not fit the configs.</exception>
    /// <remarks>The configs, tokenizer files and weights are checked against <paramref name="limits"/> (default
    /// <see cref="IO.ResourceLimits.Default"/>) before anything is allocated.</remarks>
    public static ConceptEvaluator FromFolder(string clipFolder, torch.Device? device = null, IO.ResourceLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clipFolder);
        using var scope = IO.ResourceLimits.Use(limits ?? IO.ResourceLimits.Default);
        var processor = ClipImageProcessor.FromFolder(clipFolder);
        return new ConceptEvaluator(ClipTextTower.LoadModel(clipFolder, device), processor, ownsClip: true);
    }

    /// <summary>Releases the CLIP model when this evaluator loaded it (<see cref="FromFolder"/>).</summary>
    public void Dispose()
    {
        if (_ownsClip) Clip.Dispose();
    }

    /// <summary>The CLIP model.</summary>
    internal ClipModel Clip { get; }

    /// <summary>The image preprocessing.</summary>
    internal ClipImageProcessor Processor { get; }

    /// <summary>Computes both scores and the per-prompt breakdown. Runs on a dedicated thread; cancellation is checked
    /// between CLIP batches.</summary>
    /// <exception cref="ArgumentException">No source images, no generated images, or a prompt without images.</exception>
    /// <exception cref="InvalidOperationException">The CLIP model has no text tower.</exception>
    internal Task<ConceptScores> ScoreAsync(ConceptScoringRequest request, IProgress<EvaluationProgress>? progress = null, CancellationToken ct = default)
    {
        Validate(request);
        return Task.Factory.StartNew(() => Score(request, progress, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The synchronous form of <see cref="ScoreAsync"/>.</summary>
    internal ConceptScores Score(ConceptScoringRequest request, IProgress<EvaluationProgress>? progress = null, CancellationToken ct = default)
    {
        Validate(request);
        if (Clip.TextTower is null) throw new InvalidOperationException("The text score needs a CLIP model with a text tower.");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var source = EmbedImages(request.SourceImages, request.BatchSize, EvaluationPhase.EmbeddingSourceImages, progress, ct);
        var generatedImages = request.Generated.SelectMany(g => g.Images).ToArray();
        var generated = EmbedImages(generatedImages, request.BatchSize, EvaluationPhase.EmbeddingGeneratedImages, progress, ct);

        var textPrompts = request.Generated.Select(g => ClipScores.RemoveIdentifier(g.Prompt, request.IdentifierToken)).ToArray();
        progress?.Report(new EvaluationProgress(EvaluationPhase.EmbeddingPrompts, 0, textPrompts.Length));
        ct.ThrowIfCancellationRequested();
        var text = ClipModel.Normalize(Clip.GetTextFeatures(textPrompts));
        progress?.Report(new EvaluationProgress(EvaluationPhase.EmbeddingPrompts, textPrompts.Length, textPrompts.Length));

        var promptIndex = torch.tensor(request.Generated.SelectMany((g, i) => Enumerable.Repeat((long)i, g.Images.Count)).ToArray(), device: text.device);
        double[] imageIdentity = ToArray(ClipScores.ImageImageCosine(source, generated).mean([0L]));
        double[] imageText = ToArray(ClipScores.TextPairs(text, generated, promptIndex));

        var perPrompt = new List<PromptScores>();
        int offset = 0;
        for (int p = 0; p < request.Generated.Count; p++)
        {
            int n = request.Generated[p].Images.Count;
            var ids = imageIdentity.Skip(offset).Take(n).ToArray();
            var texts = imageText.Skip(offset).Take(n).ToArray();
            perPrompt.Add(new PromptScores(request.Generated[p].Prompt, textPrompts[p], ids.Average(), texts.Average(), ids, texts));
            offset += n;
        }
        progress?.Report(new EvaluationProgress(EvaluationPhase.Completed, 1, 1));
        // Identity over all pairs equals the mean of the per-image means because every image meets every source.
        return new ConceptScores(imageIdentity.Average(), imageText.Average(), perPrompt, request.SourceImages.Count, generatedImages.Length);
    }

    /// <summary>Normalised CLIP image embeddings [N, projection] of images, in batches.</summary>
    public torch.Tensor EmbedImages(IReadOnlyList<RgbImage> images, int batchSize = 16, CancellationToken ct = default) =>
        EmbedImages(images, batchSize, EvaluationPhase.EmbeddingGeneratedImages, null, ct);

    private torch.Tensor EmbedImages(IReadOnlyList<RgbImage> images, int batchSize, EvaluationPhase phase, IProgress<EvaluationProgress>? progress, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var parts = new List<torch.Tensor>();
        progress?.Report(new EvaluationProgress(phase, 0, images.Count));
        for (int start = 0; start < images.Count; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var batch = images.Skip(start).Take(batchSize).ToArray();
            var pixels = Processor.Preprocess(batch, Clip.Device);
            parts.Add(ClipModel.Normalize(Clip.GetImageFeatures(pixels)));
            progress?.Report(new EvaluationProgress(phase, Math.Min(start + batchSize, images.Count), images.Count));
        }
        return torch.cat(parts, 0).MoveToOuterDisposeScope();
    }

    private static double[] ToArray(torch.Tensor t) => t.to_type(torch.float64).cpu().data<double>().ToArray();

    private static void Validate(ConceptScoringRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.SourceImages is not { Count: > 0 }) throw new ArgumentException("At least one source image is needed.", nameof(request));
        if (request.Generated is not { Count: > 0 }) throw new ArgumentException("At least one generated image set is needed.", nameof(request));
        var empty = request.Generated.FirstOrDefault(g => g.Images is not { Count: > 0 });
        if (empty is not null) throw new ArgumentException($"The prompt '{empty.Prompt}' has no images.", nameof(request));
        ArgumentException.ThrowIfNullOrEmpty(request.IdentifierToken, nameof(request));
        var missing = request.Generated.FirstOrDefault(g => !g.Prompt.Contains(request.IdentifierToken, StringComparison.Ordinal));
        if (missing is not null)
            throw new ArgumentException($"The prompt '{missing.Prompt}' does not contain the identifier '{request.IdentifierToken}', so nothing would be removed for the text score.", nameof(request));
    }
}
