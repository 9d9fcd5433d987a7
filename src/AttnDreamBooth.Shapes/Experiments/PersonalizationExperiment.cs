using System.Diagnostics;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>
/// The proof-of-effect experiment: for every concept × method, train on the concept's rendered photos with the method's
/// plan and a fixed seed, generate every prompt with the same seeds, and let the analyzer score each image — identity,
/// text (requested attributes present), [V]-map IoU with the concept's mask and [V]'s share of the words' attention per
/// layer resolution — also after each stage of multi-stage methods. Writes results.csv, results.json, summary.md
/// (mean ± 95 % CI per method), scatter.png (identity against text) and one grid per concept (method × prompt, image
/// over [V] map). Every file is written atomically; a cell whose results are already in the output folder with the same
/// settings (model weights, concept, plan, prompts, seeds, sampler) is reused, so an interrupted run continues where it
/// stopped. See docs/proof-of-effect.md for the protocol.
/// </summary>
public static class PersonalizationExperiment
{
    /// <summary>One row per image with every score.</summary>
    public const string ResultsCsvFile = "results.csv";

    /// <summary>Every raw score, the settings and the summary.</summary>
    public const string ResultsJsonFile = "results.json";

    /// <summary>The markdown tables.</summary>
    public const string SummaryFile = "summary.md";

    /// <summary>Identity against text per method.</summary>
    public const string ScatterFile = "scatter.png";

    /// <summary>A cell's stored results (in <c>cells/&lt;concept&gt;/&lt;method&gt;/</c>).</summary>
    public const string CellFile = "cell.json";

    /// <summary>The token standing for the concept in heatmap requests (the pipeline resolves it to [V] and stores the map
    /// under [V], the only map requested).</summary>
    private const string ConceptToken = "{}";

    /// <summary>Runs the experiment.</summary>
    /// <param name="options">What to compare.</param>
    /// <param name="progress">Reports every phase of every cell, and every training step.</param>
    /// <param name="ct">Cancellation: stops between steps; finished cells stay in the output folder and are reused by the next run.</param>
    /// <exception cref="ArgumentException">Unusable options (see <see cref="PersonalizationExperimentOptions.Validate"/>), or a
    /// concept that contrasts with none of the prompts' backgrounds.</exception>
    /// <exception cref="DirectoryNotFoundException">The model folder does not exist.</exception>
    public static async Task<PersonalizationExperimentResult> RunAsync(PersonalizationExperimentOptions options, IProgress<ExperimentProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        string root = Path.GetFullPath(options.OutputFolder);
        string model = Path.GetFullPath(options.ModelFolder);
        if (!Directory.Exists(model)) throw new DirectoryNotFoundException($"Model folder '{model}' does not exist.");
        var world = options.World;
        foreach (var concept in options.Concepts.Where(c => !options.Prompts.Any(p => c.ContrastsWith(p.Background, world))))
            throw new ArgumentException($"The concept '{concept.Name}' lacks contrast with the background of every prompt, so none of its images could be judged; add prompts on other backgrounds.", nameof(options));
        Directory.CreateDirectory(root);
        var clock = Stopwatch.StartNew();
        string modelFingerprint = ExperimentFingerprint.OfModel(model, ct);
        var scores = new List<ExperimentImageScore>();
        var cells = new List<ExperimentCell>();
        int cellCount = options.Concepts.Count * options.Methods.Count, cellNumber = 0;
        foreach (var concept in options.Concepts)
        {
            var kept = Enumerable.Range(0, options.Prompts.Count).Where(i => concept.ContrastsWith(options.Prompts[i].Background, world)).ToArray();
            var skipped = Enumerable.Range(0, options.Prompts.Count).Except(kept).ToArray();
            string photos = Path.Combine(root, "concepts", concept.Name, "photos");
            // Training reads every image of the folder: photos of an earlier version of the spec must not stay.
            if (Directory.Exists(photos)) Directory.Delete(photos, recursive: true);
            ConceptTrial.WritePhotos(world, concept, photos);
            foreach (var method in options.Methods)
            {
                ct.ThrowIfCancellationRequested();
                cellNumber++;
                var plan = options.PlanFor(method);
                string fingerprint = ExperimentFingerprint.OfCell(modelFingerprint, options, concept, method, plan, kept);
                string folder = Path.Combine(root, "cells", concept.Name, method.Name());
                ExperimentProgress Report(ExperimentPhase phase) => new(phase, cellNumber, cellCount, concept.Name, method, clock.Elapsed);
                if (ExperimentCellFile.TryRead(folder, fingerprint) is { } stored)
                {
                    scores.AddRange(stored.Scores);
                    cells.Add(stored.Cell with { Reused = true });
                    progress?.Report(Report(ExperimentPhase.CellReused));
                    continue;
                }
                progress?.Report(Report(ExperimentPhase.CellStarted));
                var context = new CellContext(options, root, model, concept, method, plan, kept, photos, folder, p => progress?.Report(p with
                {
                    Cell = cellNumber, Cells = cellCount, Concept = concept.Name, Method = method, Elapsed = clock.Elapsed,
                }));
                var (cellScores, cell, losses) = await RunCellAsync(context, skipped, ct).ConfigureAwait(false);
                ExperimentCellFile.Write(folder, fingerprint, cell, cellScores, losses);
                scores.AddRange(cellScores);
                cells.Add(cell);
                progress?.Report(Report(ExperimentPhase.CellFinished));
            }
        }
        progress?.Report(new ExperimentProgress(ExperimentPhase.Reporting, 0, cellCount, "", options.Methods[0], clock.Elapsed));
        var summary = ExperimentSummary.Summarize(scores, options.Methods);
        var files = ExperimentReport.Write(root, options, modelFingerprint, scores, summary, cells);
        return new PersonalizationExperimentResult(root, scores, summary, cells, files);
    }

    private sealed record CellContext(PersonalizationExperimentOptions Options, string Root, string Model, ConceptSpec Concept, PersonalizationMethod Method,
        StagePlan Plan, IReadOnlyList<int> Prompts, string Photos, string Folder, Action<ExperimentProgress> Report);

    private static async Task<(IReadOnlyList<ExperimentImageScore>, ExperimentCell, IReadOnlyList<double>)> RunCellAsync(CellContext c, IReadOnlyList<int> skipped,
        CancellationToken ct)
    {
        var options = c.Options;
        var plan = c.Plan;
        var prompts = c.Prompts.Select(i => options.Prompts[i]).ToArray();
        // The last stage's images are the trained model's, generated after training like every other method's.
        var stageEnds = options.StageMetrics ? plan.EnabledStages.SkipLast(1).ToArray() : [];
        var generation = options.Generation with { BatchSize = options.Seeds, Seed = 0, HeatmapTokens = [ConceptToken] };
        var training = ShapesPersonalization.TrainingOptions(options.TrainingSeed) with
        {
            EightBitOptimizerStates = options.EightBitOptimizerStates,
            ClassImageDirectory = plan.UsesPriorPreservation ? Path.Combine(c.Root, "class-images", c.Concept.Category.Word) : null,
            ValidationPrompts = stageEnds.Length > 0 ? prompts.Select(p => p.Template).ToArray() : [],
            ValidationGeneration = generation,
            ValidationAfterStages = stageEnds,
        };
        var progressTemplate = new ExperimentProgress(ExperimentPhase.Training, 0, 0, "", c.Method, TimeSpan.Zero);
        var stageImages = new List<(TrainingStage Stage, IReadOnlyList<GeneratedImage> Images)>();
        var stageEmbeddings = new List<(TrainingStage Stage, IReadOnlyList<float> Rows)>();
        var trainingProgress = new InlineProgress<TrainingProgress>(p =>
        {
            if (p.ValidationImages is { } images && p.Step == p.StageSteps) stageImages.Add((p.Stage, images));
            if (p.StageEndEmbedding is { } rows) stageEmbeddings.Add((p.Stage, rows));
            c.Report(progressTemplate with { Training = p, Completed = p.GlobalStep, Total = p.TotalSteps });
        });
        var classProgress = new InlineProgress<ClassImageProgress>(p =>
            c.Report(progressTemplate with { Phase = ExperimentPhase.ClassImages, ClassImages = p, Completed = p.Completed, Total = p.Total }));

        var trainClock = Stopwatch.StartNew();
        using var pipeline = PersonalizationPipeline.FromPretrained(c.Model).WithStages(plan).WithTrainingOptions(training).Build(ct);
        var initialEmbedding = InitialEmbedding(pipeline, plan, c.Concept.Category.Word);
        var trained = await pipeline.TrainAsync(Concept.FromFolder(c.Photos, c.Concept.Category.Word), trainingProgress, ct, classImageProgress: classProgress)
            .ConfigureAwait(false);
        trainClock.Stop();

        var generationClock = Stopwatch.StartNew();
        var final = new List<GeneratedImage>();
        for (int i = 0; i < prompts.Length; i++)
        {
            c.Report(progressTemplate with { Phase = ExperimentPhase.Generating, Completed = i, Total = prompts.Length });
            final.AddRange(await pipeline.GenerateAsync(prompts[i].Template, generation, ct).ConfigureAwait(false));
        }
        c.Report(progressTemplate with { Phase = ExperimentPhase.Generating, Completed = prompts.Length, Total = prompts.Length });

        string images = Path.Combine(c.Folder, "images");
        if (Directory.Exists(images)) Directory.Delete(images, recursive: true);
        Directory.CreateDirectory(images);
        var judge = new ConceptJudge(options.World, c.Concept);
        var scores = new List<ExperimentImageScore>();
        foreach (var (stage, stageSet) in stageImages) scores.AddRange(Judge(c, judge, stageSet, stage));
        scores.AddRange(Judge(c, judge, final, null));
        generationClock.Stop();
        var cell = new ExperimentCell(c.Concept.Name, c.Method, Reused: false, plan.TotalSteps, trainClock.Elapsed, generationClock.Elapsed, skipped)
        {
            EmbeddingMovement = EmbeddingMovement(initialEmbedding, stageEmbeddings),
        };
        return (scores, cell, trained.LossHistory.ToArray());
    }

    /// <summary>The row the plan's concept embedding starts from: the category word's first token, or the identifier token's
    /// own row (<see cref="EmbeddingInitialization"/>).</summary>
    private static float[] InitialEmbedding(PersonalizationPipeline pipeline, StagePlan plan, string category)
    {
        string word = plan.EmbeddingInitialization == EmbeddingInitialization.IdentifierToken && plan.IdentifierToken is { } token ? token : category;
        int id = pipeline.Components.Tokenizer.EncodeWithoutSpecialTokens(word)[0];
        using var row = pipeline.Components.TextEncoder.TokenEmbeddingWeight[id].detach().cpu();
        return row.data<float>().ToArray();
    }

    /// <summary>How far each stage moved the embedding: ‖end − start‖ / ‖initial‖, each stage starting where the one before
    /// ended and the first at <paramref name="initial"/> (repeated for every row of a multi-row concept).</summary>
    internal static IReadOnlyDictionary<TrainingStage, double> EmbeddingMovement(IReadOnlyList<float> initial,
        IReadOnlyList<(TrainingStage Stage, IReadOnlyList<float> Rows)> stageEnds)
    {
        double scale = Math.Sqrt(initial.Sum(v => (double)v * v));
        var movement = new Dictionary<TrainingStage, double>();
        IReadOnlyList<float>? start = null;
        foreach (var (stage, rows) in stageEnds)
        {
            double squared = 0;
            for (int i = 0; i < rows.Count; i++)
            {
                double d = rows[i] - (start is null ? initial[i % initial.Count] : start[i]);
                squared += d * d;
            }
            movement[stage] = Math.Sqrt(squared / (rows.Count / initial.Count)) / scale;
            start = rows;
        }
        return movement;
    }

    /// <summary>Scores a set of images (prompt-major, <see cref="PersonalizationExperimentOptions.Seeds"/> per prompt) and
    /// writes each image and its [V]-map overlay.</summary>
    private static List<ExperimentImageScore> Judge(CellContext c, ConceptJudge judge, IReadOnlyList<GeneratedImage> images, TrainingStage? stage)
    {
        var scores = new List<ExperimentImageScore>();
        var references = new Dictionary<int, double>();
        int seeds = c.Options.Seeds;
        if (images.Count != c.Prompts.Count * seeds)
            throw new InvalidOperationException($"Expected {c.Prompts.Count * seeds} images after {(stage is null ? "training" : $"stage {(int)stage}")}, got {images.Count}.");
        for (int k = 0; k < images.Count; k++)
        {
            int promptIndex = c.Prompts[k / seeds];
            var prompt = c.Options.Prompts[promptIndex];
            var image = images[k];
            var map = image.Heatmaps.Values.Single();
            var verdict = judge.Judge(image.Image, prompt, image.Prompt, image.Seed, map.Values,
                map.ByLayerResolution.ToDictionary(e => e.Key, e => (IReadOnlyList<float>)e.Value.Values));
            string stem = $"p{promptIndex:D2}-s{image.Seed}" + (stage is { } s ? $"-after-stage{(int)s}" : "");
            string imageFile = Path.Combine(c.Folder, "images", stem + ".png");
            string heatmapFile = Path.Combine(c.Folder, "images", stem + "-heatmap.png");
            image.SavePng(imageFile);
            map.RenderOverlay(image.Image).SavePng(heatmapFile);
            if (!references.TryGetValue(promptIndex, out double reference))
                references[promptIndex] = reference = judge.Judge(ConceptPrompts.Render(prompt, c.Options.World, c.Concept).Image, prompt, "", 0).Identity.Score;
            scores.Add(new ExperimentImageScore(c.Concept.Name, c.Concept.Category.Word, c.Concept.IsTuning, c.Method, stage, promptIndex,
                ConceptPrompts.Text(prompt), prompt.Complexity, image.Seed, verdict.Identity, reference, verdict.TextScore, verdict.HeatmapIoU, map.WordShares,
                verdict.Attributes, Relative(c.Root, imageFile), Relative(c.Root, heatmapFile))
            { HeatmapIoUByResolution = verdict.HeatmapIoUByResolution });
        }
        return scores;
    }

    private static string Relative(string root, string path) => Path.GetRelativePath(root, path).Replace('\\', '/');

    /// <summary>Reports on the calling thread (the training thread), so stage-end images are captured before training goes on.</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
