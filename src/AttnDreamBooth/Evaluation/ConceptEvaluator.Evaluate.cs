using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Evaluation;

public sealed partial class ConceptEvaluator
{
    /// <summary>
    /// Runs the evaluation protocol on a personalised pipeline: renders <see cref="EvaluationProtocol.ImagesPerPrompt"/>
    /// images for every prompt (<c>{}</c> → "[V] category"; image <c>i</c> of every prompt from seed
    /// <c>Protocol.Seed + i</c>), then scores them against <paramref name="sourceImages"/> with <see cref="Score"/>.
    /// The pipeline is held for the whole call (no training or generation in between) and the work runs on a dedicated
    /// thread; cancellation is checked every denoising step and between CLIP batches.
    /// </summary>
    /// <param name="pipeline">A pipeline holding a concept (trained with <see cref="PersonalizationPipeline.TrainAsync"/> or
    /// loaded with <see cref="PersonalizedModel.LoadAsync(string, PersonalizationPipeline, CancellationToken)"/>).</param>
    /// <param name="sourceImages">The concept's training photos (e.g. <see cref="RgbImage.Load(string, IO.ResourceLimits)"/> of each file, with the
    /// pipeline's <see cref="PersonalizationPipeline.ResourceLimits"/>: the same decoder training used).</param>
    /// <param name="options">Protocol and execution settings (default: the paper's protocol for the concept's category).</param>
    /// <param name="progress">Reports <see cref="EvaluationPhase.GeneratingImages"/> per image, then the scoring phases.</param>
    /// <param name="ct">Cancels the evaluation.</param>
    /// <exception cref="InvalidOperationException">The pipeline holds no concept or is busy, or the CLIP model has no text tower.</exception>
    /// <exception cref="ArgumentException">No source images, or an invalid protocol or option.</exception>
    public Task<ConceptEvaluation> EvaluateAsync(PersonalizationPipeline pipeline, IReadOnlyList<RgbImage> sourceImages,
        ConceptEvaluationOptions? options = null, IProgress<EvaluationProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(sourceImages);
        if (sourceImages.Count == 0 || sourceImages.Any(i => i is null)) throw new ArgumentException("At least one source image (and no null) is needed.", nameof(sourceImages));
        options ??= new ConceptEvaluationOptions();
        options.Validate();
        var concept = pipeline.Concept
            ?? throw new InvalidOperationException("The pipeline holds no concept; train one or load it with PersonalizedModel.LoadAsync before evaluating.");
        if (Clip.TextTower is null) throw new InvalidOperationException("The text score needs a CLIP model with a text tower (ConceptEvaluator.FromFolder).");
        var protocol = options.Protocol ?? EvaluationProtocol.Paper(concept.Category);
        protocol.Validate();
        var prompts = protocol.ExpandPrompts(concept.Token, concept.Category);
        var sources = sourceImages.ToArray();
        return pipeline.RunExclusive(() => Evaluate(pipeline, concept, protocol, prompts, sources, options, progress, ct), ct);
    }

    private ConceptEvaluation Evaluate(PersonalizationPipeline pipeline, PersonalizedModel concept, EvaluationProtocol protocol, IReadOnlyList<string> prompts,
        IReadOnlyList<RgbImage> sources, ConceptEvaluationOptions options, IProgress<EvaluationProgress>? progress, CancellationToken ct)
    {
        int perPrompt = protocol.ImagesPerPrompt;
        int total = prompts.Count * perPrompt, done = 0;
        var generated = new List<IReadOnlyList<GeneratedImage>>(prompts.Count);
        progress?.Report(new EvaluationProgress(EvaluationPhase.GeneratingImages, 0, total) { Prompt = prompts[0] });
        foreach (string prompt in prompts)
        {
            var images = new List<GeneratedImage>(perPrompt);
            for (int first = 0; first < perPrompt; first += options.GenerationBatchSize)
            {
                ct.ThrowIfCancellationRequested();
                var generation = protocol.GenerationOptions(first, Math.Min(options.GenerationBatchSize, perPrompt - first)) with { Width = options.Width, Height = options.Height };
                var batch = pipeline.GenerateCore(prompt, generation, ct);
                images.AddRange(batch);
                done += batch.Count;
                progress?.Report(new EvaluationProgress(EvaluationPhase.GeneratingImages, done, total) { Prompt = prompt });
            }
            generated.Add(images);
        }

        var request = new ConceptScoringRequest(
            sources,
            prompts.Select((p, i) => new GeneratedImageSet(p, generated[i].Select(g => g.Image).ToArray())).ToArray(),
            concept.Token) { BatchSize = options.ClipBatchSize };
        var scores = Score(request, progress, ct);
        return new ConceptEvaluation(protocol, concept.Token, concept.Category, scores.Identity, scores.Text, scores.PerPrompt,
            scores.SourceCount, scores.GeneratedCount, generated);
    }
}
