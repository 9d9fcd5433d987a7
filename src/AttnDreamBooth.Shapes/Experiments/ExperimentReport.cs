using System.Globalization;
using System.Text;
using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>Writes an experiment's report files (each atomically): results.csv, results.json, summary.md, scatter.png and
/// one grid per concept.</summary>
internal static class ExperimentReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<string> Write(string root, PersonalizationExperimentOptions options, string modelFingerprint,
        IReadOnlyList<ExperimentImageScore> scores, IReadOnlyList<ExperimentMethodSummary> summary, IReadOnlyList<ExperimentCell> cells)
    {
        // Rows of cells stored before per-resolution IoU was measured have none: the same columns, left empty.
        var heights = scores.SelectMany(s => s.WordShares.Keys.Concat(s.HeatmapIoUByResolution.Keys)).Distinct().OrderDescending().ToArray();
        var files = new List<string>();
        string csv = Path.Combine(root, PersonalizationExperiment.ResultsCsvFile);
        AtomicFile.WriteAllText(csv, Csv(scores, heights));
        files.Add(csv);
        string json = Path.Combine(root, PersonalizationExperiment.ResultsJsonFile);
        AtomicFile.WriteAllText(json, Json(options, modelFingerprint, scores, summary, cells));
        files.Add(json);
        string markdown = Path.Combine(root, PersonalizationExperiment.SummaryFile);
        AtomicFile.WriteAllText(markdown, Markdown(options, modelFingerprint, scores, summary, cells, heights));
        files.Add(markdown);
        string scatter = Path.Combine(root, PersonalizationExperiment.ScatterFile);
        var png = ExperimentPlots.Scatter(scores, summary, options.Methods);
        AtomicFile.Write(scatter, s => s.Write(png));
        files.Add(scatter);
        foreach (var concept in options.Concepts)
        {
            var rows = scores.Where(s => s.Concept == concept.Name).ToList();
            if (rows.Count == 0) continue;
            string grid = Path.Combine(root, GridFile(concept.Name));
            var gridPng = ExperimentPlots.Grid(root, concept.Name, rows, options.Methods, options.Prompts);
            AtomicFile.Write(grid, s => s.Write(gridPng));
            files.Add(grid);
        }
        return files;
    }

    /// <summary>The grid of a concept: <c>grid-&lt;concept&gt;.png</c>.</summary>
    public static string GridFile(string concept) => $"grid-{concept}.png";

    public static string StageLabel(TrainingStage? stage) => stage is { } s ? $"after stage {(int)s}" : "trained";

    private static string Csv(IReadOnlyList<ExperimentImageScore> scores, IReadOnlyList<int> heights)
    {
        var sb = new StringBuilder();
        var header = new List<string>
        {
            "concept", "category", "tuning", "method", "after_stage", "prompt_index", "prompt", "complexity", "seed", "identity", "reference_identity", "text",
            "concept_present", "v_map_iou",
        };
        header.AddRange(heights.Select(h => $"v_map_iou_{h}"));
        header.AddRange(heights.Select(h => $"v_share_{h}"));
        header.AddRange(["identity_shape", "identity_palette", "identity_balance", "identity_pattern", "identity_outline", "identity_emblem"]);
        foreach (string a in PromptAttributes.All) header.AddRange([$"{a}_expected", $"{a}_measured"]);
        header.AddRange(["image", "heatmap"]);
        sb.AppendJoin(',', header).Append('\n');
        foreach (var s in scores)
        {
            var id = s.Identity;
            var cells = new List<string>
            {
                s.Concept, s.Category, s.IsTuning ? "true" : "false", s.Method.Name(), s.AfterStage is { } st ? ((int)st).ToString(Inv) : "",
                s.PromptIndex.ToString(Inv), s.Prompt, s.Complexity.ToString(Inv), s.Seed.ToString(Inv), N(id.Score), N(s.ReferenceIdentity), N(s.Text),
                s.ConceptPresent ? "true" : "false", N(s.HeatmapIoU),
            };
            cells.AddRange(heights.Select(h => s.HeatmapIoUByResolution.TryGetValue(h, out double? v) ? N(v) : ""));
            cells.AddRange(heights.Select(h => s.WordShares.TryGetValue(h, out double v) ? N(v) : ""));
            cells.AddRange([N(id.Shape), N(id.Palette), N(id.Balance), N(id.Pattern), N(id.Outline), N(id.Emblem)]);
            foreach (string a in PromptAttributes.All)
            {
                var check = s.Attributes.FirstOrDefault(c => c.Attribute == a);
                cells.AddRange([check?.Expected ?? "", check?.Measured ?? ""]);
            }
            cells.AddRange([s.Image, s.Heatmap]);
            sb.AppendJoin(',', cells.Select(Quote)).Append('\n');
        }
        return sb.ToString();
    }

    private static string N(double? value) => value is { } v ? v.ToString("R", Inv) : "";

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    private static string Json(PersonalizationExperimentOptions options, string modelFingerprint, IReadOnlyList<ExperimentImageScore> scores,
        IReadOnlyList<ExperimentMethodSummary> summary, IReadOnlyList<ExperimentCell> cells)
    {
        var g = options.Generation;
        var document = new
        {
            format = "attndreambooth-experiment",
            version = 1,
            model = new { folder = Path.GetFullPath(options.ModelFolder), fingerprint = modelFingerprint },
            world = options.World.Name,
            settings = new
            {
                trainingSeed = options.TrainingSeed,
                seeds = options.Seeds,
                stepsScale = options.StepsScale,
                classImages = options.ClassImages,
                loraRank = options.Lora?.Rank,
                eightBitOptimizerStates = options.EightBitOptimizerStates,
                learningRateScales = options.LearningRateScales?.OrderBy(p => p.Key).ToDictionary(p => ((int)p.Key).ToString(Inv), p => p.Value),
                stageMetrics = options.StageMetrics,
                generation = new { g.Sampler, g.Steps, g.GuidanceScale, g.HeatmapResolution, heatmapThreshold = ConceptJudge.HeatmapThreshold },
                presenceThreshold = ConceptJudge.PresenceThreshold,
                methods = options.Methods.Select(m => new
                {
                    method = m,
                    steps = options.PlanFor(m).EnabledStages.ToDictionary(s => (int)s, s => options.PlanFor(m)[s].Steps),
                    plan = options.PlanFor(m),
                }).ToArray(),
                concepts = options.Concepts.Select(c => new { c.Name, category = c.Category.Word, tuning = c.IsTuning }).ToArray(),
                prompts = options.Prompts.Select(p => new { text = ConceptPrompts.Text(p), complexity = p.Complexity, requested = p.RequestedAttributes.ToDictionary(a => a.Key, a => a.Value) }).ToArray(),
            },
            cells,
            summary,
            scores,
        };
        return JsonFiles.Serialize(document, ExperimentJson.Options);
    }

    private static string Markdown(PersonalizationExperimentOptions options, string modelFingerprint, IReadOnlyList<ExperimentImageScore> scores,
        IReadOnlyList<ExperimentMethodSummary> summary, IReadOnlyList<ExperimentCell> cells, IReadOnlyList<int> heights)
    {
        var sb = new StringBuilder();
        var evaluation = options.Concepts.Where(c => !c.IsTuning).ToList();
        var tuning = options.Concepts.Where(c => c.IsTuning).ToList();
        var g = options.Generation;
        sb.Append("# Proof-of-effect experiment\n\n");
        sb.Append(Inv, $"- Model: `{Path.GetFileName(Path.GetFullPath(options.ModelFolder).TrimEnd(Path.DirectorySeparatorChar))}` (`{modelFingerprint}`), world `{options.World.Name}`\n");
        sb.Append(Inv, $"- Concepts in the tables: {Names(evaluation)}; tuning concept (reported separately): {Names(tuning)}\n");
        sb.Append(Inv, $"- Prompts: {options.Prompts.Count} (complexity {options.Prompts.Min(p => p.Complexity)}–{options.Prompts.Max(p => p.Complexity)}), {options.Seeds} seed(s) per prompt (image i uses seed i)\n");
        sb.Append(Inv, $"- Sampler: {g.Sampler ?? "dpm++"}, {g.Steps} steps, guidance {g.GuidanceScale:g}; training seed {options.TrainingSeed}; steps scale {options.StepsScale:g}; {options.ClassImages} class images");
        if (options.Lora is { } lora)
            sb.Append(Inv, $"; stages 2–3 train LoRA adapters (rank {lora.Rank}, learning rate {ShapesPersonalization.LoraLearningRate:g})");
        if (options.EightBitOptimizerStates) sb.Append("; AdamW moments in 8 bits");
        foreach (var (stage, scale) in (options.LearningRateScales ?? new Dictionary<TrainingStage, double>()).OrderBy(p => p.Key))
            sb.Append(Inv, $"; stage {(int)stage}'s learning rate × {scale:g}");
        sb.Append('\n');
        sb.Append("- Every number: mean ± half-width of the 95 % confidence interval over concepts × prompts × seeds (images taken as independent).\n");
        sb.Append("- [V]-map IoU h×h: the IoU of the map of the cross-attention layers with an h×h latent grid alone (same threshold and output grid as the all-layer map).\n");
        int unmeasured = scores.Count(s => s.HeatmapIoUByResolution.Count == 0);
        if (unmeasured > 0)
            sb.Append(Inv, $"- Per-resolution [V]-map IoU is missing for {unmeasured} of {scores.Count} images (cells stored before it was measured): those images are left out of its columns; delete their cells to measure them.\n");
        sb.Append('\n');

        var finals = summary.Where(s => s.AfterStage is null).ToList();
        sb.Append("## Trained models\n\n");
        sb.Append("| method | steps | images | identity | text | concept present | [V]-map IoU |").Append(ResolutionHeader(heights)).Append('\n');
        sb.Append("|---|---|---|---|---|---|---|").Append(string.Concat(heights.Select(_ => "---|---|"))).Append('\n');
        foreach (var s in finals)
        {
            sb.Append(Inv, $"| {s.Method.Name()} | {Steps(options.PlanFor(s.Method))} | {s.Identity.Count} | {E(s.Identity)} | {E(s.Text)} | {E(s.ConceptPresence)} | {E(s.HeatmapIoU)} |");
            sb.Append(ResolutionCells(s, heights)).Append('\n');
        }

        // What a perfect model would score: each (concept, prompt) of the tables once, rendered exactly as asked.
        var references = scores.Where(s => !s.IsTuning).GroupBy(s => (s.Concept, s.PromptIndex)).Select(g => g.First().ReferenceIdentity).ToList();
        if (references.Count > 0)
        {
            var reference = ExperimentEstimate.Of(references);
            sb.Append(Inv, $"| *renders of the prompts (reference)* | – | {reference.Count} | {E(reference)} | 1.000 | {E(ExperimentEstimate.Of(references.Select(r => r >= ConceptJudge.PresenceThreshold ? 1.0 : 0.0)))} | – |");
            sb.Append(string.Concat(heights.Select(_ => " – | – |"))).Append('\n');
        }

        var staged = summary.Where(s => summary.Any(o => o.Method == s.Method && o.AfterStage is not null)).ToList();
        if (staged.Count > 0)
        {
            sb.Append("\n## After each stage\n\n");
            sb.Append("| method | after | identity | text | concept present | [V]-map IoU |").Append(ResolutionHeader(heights)).Append('\n');
            sb.Append("|---|---|---|---|---|---|").Append(string.Concat(heights.Select(_ => "---|---|"))).Append('\n');
            foreach (var s in staged)
            {
                string after = s.AfterStage is { } st ? $"stage {(int)st}" : $"stage {(int)options.PlanFor(s.Method).EnabledStages[^1]} (trained)";
                sb.Append(Inv, $"| {s.Method.Name()} | {after} | {E(s.Identity)} | {E(s.Text)} | {E(s.ConceptPresence)} | {E(s.HeatmapIoU)} |");
                sb.Append(ResolutionCells(s, heights)).Append('\n');
            }
        }

        var trained = scores.Where(s => s.AfterStage is null && !s.IsTuning).ToList();
        var levels = trained.Select(s => s.Complexity).Distinct().Order().ToArray();
        if (levels.Length > 0)
        {
            foreach (var (title, value) in new (string, Func<ExperimentImageScore, double>)[] { ("Text score", s => s.Text), ("Identity", s => s.Identity.Score) })
            {
                sb.Append(Inv, $"\n## {title} by prompt complexity (number of requested attributes)\n\n| method |");
                foreach (int l in levels) sb.Append(Inv, $" {l} |");
                sb.Append('\n').Append("|---|").Append(string.Concat(levels.Select(_ => "---|"))).Append('\n');
                foreach (var m in options.Methods)
                {
                    sb.Append(Inv, $"| {m.Name()} |");
                    foreach (int l in levels) sb.Append(' ').Append(E(ExperimentEstimate.Of(trained.Where(s => s.Method == m && s.Complexity == l).Select(value)))).Append(" |");
                    sb.Append('\n');
                }
            }

            sb.Append("\n## Requested attributes present (share of the images that ask for each)\n\n| method |");
            var asked = PromptAttributes.All.Where(a => trained.Any(s => s.Attributes.Any(c => c.Attribute == a))).ToArray();
            foreach (string a in asked) sb.Append(Inv, $" {a} |");
            sb.Append('\n').Append("|---|").Append(string.Concat(asked.Select(_ => "---|"))).Append('\n');
            foreach (var m in options.Methods)
            {
                sb.Append(Inv, $"| {m.Name()} |");
                foreach (string a in asked)
                {
                    var checks = trained.Where(s => s.Method == m).SelectMany(s => s.Attributes.Where(c => c.Attribute == a)).ToList();
                    sb.Append(' ').Append(checks.Count == 0 ? "–" : (checks.Count(c => c.Followed) / (double)checks.Count).ToString("F3", Inv)).Append(" |");
                }
                sb.Append('\n');
            }
        }

        AppendEmbeddingMovement(sb, options, cells);

        foreach (var (title, concepts) in new[] { ("Per concept", evaluation), ("Tuning concept (not in the tables above)", tuning) })
        {
            if (concepts.Count == 0) continue;
            sb.Append(Inv, $"\n## {title}\n\n| concept | method | identity | text | concept present | [V]-map IoU |{ResolutionHeader(heights)}\n|---|---|---|---|---|---|")
                .Append(string.Concat(Enumerable.Repeat("---|", 2 * heights.Count))).Append('\n');
            foreach (var c in concepts)
                foreach (var m in options.Methods)
                {
                    var rows = scores.Where(s => s.Concept == c.Name && s.Method == m && s.AfterStage is null).ToList();
                    if (rows.Count == 0) continue;
                    var e = ExperimentSummary.Summarize(m, null, rows);
                    sb.Append(Inv, $"| {c.Name} | {m.Name()} | {E(e.Identity)} | {E(e.Text)} | {E(e.ConceptPresence)} | {E(e.HeatmapIoU)} |{ResolutionCells(e, heights)}\n");
                }
        }

        sb.Append("\n## Cells\n\n| concept | method | steps | training (s) | generating + judging (s) | reused | prompts skipped (no contrast) |\n|---|---|---|---|---|---|---|\n");
        foreach (var c in cells)
            sb.Append(Inv, $"| {c.Concept} | {c.Method.Name()} | {c.Steps} | {c.Training.TotalSeconds:F0} | {c.Generation.TotalSeconds:F0} | {(c.Reused ? "yes" : "no")} | {(c.SkippedPrompts.Count == 0 ? "–" : string.Join(", ", c.SkippedPrompts.Select(i => i + 1)))} |\n");

        sb.Append("\n## Prompts\n\n");
        for (int i = 0; i < options.Prompts.Count; i++)
            sb.Append(Inv, $"{i + 1}. `{ConceptPrompts.Text(options.Prompts[i])}` (complexity {options.Prompts[i].Complexity})\n");
        sb.Append(Inv, $"\nFiles: `{PersonalizationExperiment.ResultsCsvFile}` (one row per image), `{PersonalizationExperiment.ResultsJsonFile}` (every raw score), `{PersonalizationExperiment.ScatterFile}`, ");
        sb.AppendJoin(", ", options.Concepts.Select(c => $"`{GridFile(c.Name)}`")).Append(".\n");
        return sb.ToString();
    }

    /// <summary>How far each stage moved the embedding (<see cref="ExperimentCell.EmbeddingMovement"/>), per method over the
    /// non-tuning concepts whose cells measured it.</summary>
    private static void AppendEmbeddingMovement(StringBuilder sb, PersonalizationExperimentOptions options, IReadOnlyList<ExperimentCell> cells)
    {
        var tuning = options.Concepts.Where(c => c.IsTuning).Select(c => c.Name).ToHashSet();
        var measured = cells.Where(c => c.EmbeddingMovement is not null && !tuning.Contains(c.Concept)).ToList();
        if (measured.Count == 0) return;
        var stages = measured.SelectMany(c => c.EmbeddingMovement!.Keys).Distinct().Order().ToArray();
        sb.Append("\n## Embedding movement per stage (‖end − start‖ / ‖initial row‖)\n\n| method | concepts |");
        foreach (var st in stages) sb.Append(Inv, $" stage {(int)st} |");
        sb.Append('\n').Append("|---|---|").Append(string.Concat(stages.Select(_ => "---|"))).Append('\n');
        foreach (var m in options.Methods)
        {
            var rows = measured.Where(c => c.Method == m).ToList();
            if (rows.Count == 0) continue;
            sb.Append(Inv, $"| {m.Name()} | {rows.Count} |");
            foreach (var st in stages)
            {
                var values = rows.Where(c => c.EmbeddingMovement!.ContainsKey(st)).Select(c => c.EmbeddingMovement![st]);
                sb.Append(' ').Append(E(ExperimentEstimate.Of(values))).Append(" |");
            }
            sb.Append('\n');
        }
        int missing = cells.Count(c => c.EmbeddingMovement is null && !tuning.Contains(c.Concept));
        if (missing > 0) sb.Append(Inv, $"\n{missing} cells were stored before the movement was measured and are left out; delete them to measure it.\n");
    }

    /// <summary>The per-resolution IoU columns, then the per-resolution share columns.</summary>
    private static string ResolutionHeader(IReadOnlyList<int> heights) =>
        string.Concat(heights.Select(h => string.Create(Inv, $" [V]-map IoU {h}×{h} |"))) + string.Concat(heights.Select(h => string.Create(Inv, $" [V] share {h}×{h} |")));

    private static string ResolutionCells(ExperimentMethodSummary s, IReadOnlyList<int> heights) =>
        string.Concat(heights.Select(h => " " + (s.HeatmapIoUByResolution.TryGetValue(h, out var e) ? E(e) : "–") + " |"))
        + string.Concat(heights.Select(h => " " + (s.WordShares.TryGetValue(h, out var e) ? E(e) : "–") + " |"));

    private static string Names(IReadOnlyList<ConceptSpec> concepts) =>
        concepts.Count == 0 ? "none" : string.Join(", ", concepts.Select(c => $"{c.Name} ({c.Category.Word})"));

    private static string Steps(StagePlan plan) => string.Join(" + ", plan.EnabledStages.Select(s => plan[s].Steps.ToString(Inv)));

    private static string E(ExperimentEstimate e) =>
        e.Count == 0 ? "–" : double.IsNaN(e.HalfWidth) ? e.Mean.ToString("F3", Inv) : $"{e.Mean.ToString("F3", Inv)} ± {e.HalfWidth.ToString("F3", Inv)}";
}
