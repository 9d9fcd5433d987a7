using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>One generated image of a trial with its verdict.</summary>
/// <param name="Prompt">The prompt it answers.</param>
/// <param name="Image">The image, with the subject token's map.</param>
/// <param name="Verdict">The analyzer's verdict.</param>
public sealed record ConceptTrialImage(ConceptPrompt Prompt, GeneratedImage Image, ConceptImageVerdict Verdict);

/// <summary>The outcome of a trial: the base model's images (subject = the category word) and the personalized model's.</summary>
/// <param name="Concept">The concept.</param>
/// <param name="Model">The trained concept (its pipeline holds the fine-tuned weights).</param>
/// <param name="Base">Images of the model before training, prompted with the category word (empty when not requested).</param>
/// <param name="Personalized">Images after training, prompted with the concept's token.</param>
public sealed record ConceptTrialResult(ConceptSpec Concept, PersonalizedModel Model, IReadOnlyList<ConceptTrialImage> Base, IReadOnlyList<ConceptTrialImage> Personalized)
{
    /// <summary>Share of personalized images in which the concept is present.</summary>
    public double ConceptPresence => Share(Personalized, v => v.ConceptPresent);

    /// <summary>Share of base images in which the concept is present (the base model has never seen it: ≈ 0).</summary>
    public double BaseConceptPresence => Share(Base, v => v.ConceptPresent);

    /// <summary>Share of personalized images with the background asked for.</summary>
    public double BackgroundAccuracy => Share(Personalized, v => v.BackgroundFollowed);

    /// <summary>Share of personalized images with the position asked for, among prompts that name one.</summary>
    public double PositionAccuracy => Share(Personalized.Where(i => i.Verdict.PositionFollowed is not null).ToList(), v => v.PositionFollowed == true);

    /// <summary>Mean identity score of the personalized images.</summary>
    public double MeanIdentity => Personalized.Count == 0 ? 0 : Personalized.Average(i => i.Verdict.Identity.Score);

    /// <summary>Mean IoU of the token's map with the object, over personalized images where both exist.</summary>
    public double? MeanHeatmapIoU => Personalized.Where(i => i.Verdict.HeatmapIoU is not null).Select(i => i.Verdict.HeatmapIoU!.Value).DefaultIfEmpty(double.NaN).Average() is var m && double.IsNaN(m) ? null : m;

    private static double Share(IReadOnlyList<ConceptTrialImage> images, Func<ConceptImageVerdict, bool> ok) =>
        images.Count == 0 ? 0 : images.Count(i => ok(i.Verdict)) / (double)images.Count;
}

/// <summary>
/// Personalizes a Shapes model with a concept's rendered photos and judges the result: writes the photos, generates the
/// base model's images for the prompts (subject = the category word), trains, generates the personalized images (subject
/// = the concept's token) and lets the analyzer judge every image. The pipeline's stage plan and training options are
/// the caller's (see <see cref="ShapesPersonalization"/>).
/// </summary>
public static class ConceptTrial
{
    /// <summary>Runs the trial on <paramref name="pipeline"/> (which it fine-tunes).</summary>
    /// <param name="pipeline">A pipeline on a Shapes model, not yet trained.</param>
    /// <param name="world">The world the concept belongs to.</param>
    /// <param name="concept">The concept.</param>
    /// <param name="photoFolder">Receives the concept's photos as PNG files (created if needed).</param>
    /// <param name="prompts">The prompts (e.g. <see cref="ConceptPrompts.NewContexts"/>).</param>
    /// <param name="seeds">Images per prompt (seeds 0 … seeds − 1).</param>
    /// <param name="includeBase">Also generate and judge the base model's images before training.</param>
    /// <param name="training">Training progress.</param>
    /// <param name="generation">Called after each prompt's images with (personalized?, prompt index, prompt count).</param>
    /// <param name="sampling">The sampler settings of both models' images; null uses <see cref="ShapesPersonalization.Generation"/>
    /// (the experiments' guidance of 7.5). Its batch size, seed and heatmap tokens are the trial's own.</param>
    /// <param name="ct">Cancellation.</param>
    public static async Task<ConceptTrialResult> RunAsync(PersonalizationPipeline pipeline, ShapesWorld world, ConceptSpec concept, string photoFolder,
        IReadOnlyList<ConceptPrompt> prompts, int seeds = 2, bool includeBase = true, IProgress<TrainingProgress>? training = null,
        Action<bool, int, int>? generation = null, GenerationOptions? sampling = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concept);
        ArgumentException.ThrowIfNullOrWhiteSpace(photoFolder);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seeds);
        if (pipeline.Concept is not null) throw new InvalidOperationException("The pipeline already holds a trained concept; a trial starts from the base model.");

        WritePhotos(world, concept, photoFolder);
        var judge = new ConceptJudge(world, concept);
        string category = concept.Category.Word;
        var baseImages = includeBase
            ? await GenerateAsync(pipeline, judge, prompts, seeds, p => p.WithSubject(category), category, personalized: false, generation, sampling, ct).ConfigureAwait(false)
            : [];
        var model = await pipeline.TrainAsync(Concept.FromFolder(photoFolder, category), training, ct).ConfigureAwait(false);
        var personalized = await GenerateAsync(pipeline, judge, prompts, seeds, p => p.Template, model.Token, personalized: true, generation, sampling, ct).ConfigureAwait(false);
        return new ConceptTrialResult(concept, model, baseImages, personalized);
    }

    /// <summary>Writes the concept's photos as <c>photo-1.png</c> … into <paramref name="folder"/> (atomically, replacing earlier ones).</summary>
    public static IReadOnlyList<string> WritePhotos(ShapesWorld world, ConceptSpec concept, string folder)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concept);
        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        var photos = concept.RenderPhotos(world, world.ImageSize);
        for (int i = 0; i < photos.Count; i++)
        {
            string path = Path.Combine(folder, $"photo-{i + 1}.png");
            var png = photos[i].Image.EncodePng();
            AtomicFile.Write(path, s => s.Write(png));
            paths.Add(path);
        }
        return paths;
    }

    private static async Task<IReadOnlyList<ConceptTrialImage>> GenerateAsync(PersonalizationPipeline pipeline, ConceptJudge judge, IReadOnlyList<ConceptPrompt> prompts,
        int seeds, Func<ConceptPrompt, string> text, string heatmapToken, bool personalized, Action<bool, int, int>? report, GenerationOptions? sampling,
        CancellationToken ct)
    {
        var results = new List<ConceptTrialImage>();
        var options = (sampling ?? ShapesPersonalization.Generation) with { BatchSize = seeds, Seed = 0, HeatmapTokens = [heatmapToken] };
        for (int i = 0; i < prompts.Count; i++)
        {
            string prompt = text(prompts[i]);
            var images = await pipeline.GenerateAsync(prompt, options, ct).ConfigureAwait(false);
            foreach (var image in images)
            {
                image.Heatmaps.TryGetValue(heatmapToken, out var map);
                var verdict = judge.Judge(image.Image, prompts[i], image.Prompt, image.Seed, map?.Values);
                results.Add(new ConceptTrialImage(prompts[i], image, verdict));
            }
            report?.Invoke(personalized, i + 1, prompts.Count);
        }
        return results;
    }
}
