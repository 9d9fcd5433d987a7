using System.CommandLine;
using System.Globalization;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary><c>shapes experiment</c>: the proof-of-effect experiment (every concept × method trained, generated and judged).</summary>
internal static class ShapesExperimentCommand
{
    public const string Prompts = "samples/experiment/prompts.txt";

    public static Command Create(IAnsiConsole console)
    {
        var concepts = new Option<string[]>("--concepts")
        {
            Description = $"Concept spec files or folders of them (default: the repository's {RepoPaths.Concepts}).",
            AllowMultipleArgumentsPerToken = true,
        };
        var prompts = new Option<string?>("--prompts") { Description = $"Prompt file, one prompt per line with {{V}} for the concept (default: the repository's {Prompts})." };
        var output = new Option<string>("--out") { Description = "Output folder; cells already there with the same settings are reused.", Required = true };
        var methods = new Option<string?>("--methods")
        {
            Description = $"Comma-separated methods ({string.Join(", ", PersonalizationMethods.All.Select(m => m.Name()))}, or all); default: "
                + string.Join(",", PersonalizationExperimentOptions.DefaultMethods.Select(m => m.Name())) + ".",
        };
        var quick = new Option<bool>("--quick")
        {
            Description = $"Smoke run: {PersonalizationExperimentOptions.QuickConcepts} concepts, {PersonalizationExperimentOptions.QuickPrompts} prompts, "
                + $"{PersonalizationExperimentOptions.QuickSeeds} seed, steps × {PersonalizationExperimentOptions.QuickStepsScale.ToString(CultureInfo.InvariantCulture)} (explicit flags still apply).",
        };
        var model = new Option<string?>("--model") { Description = $"The Shapes model folder (default: the repository's {RepoPaths.ShapesModel})." };
        var seeds = new Option<int?>("--seeds") { Description = "Images per prompt (seeds 0 … N−1, the same for every method); default 2." };
        var stepsScale = new Option<double?>("--steps-scale") { Description = "Multiply every method's total optimizer steps by this (default 1: the presets)." };
        var classImages = new Option<int?>("--class-images") { Description = "Prior-preservation class images per category (default 100)." };
        var seed = new Option<long>("--seed") { Description = "Training seed of every cell.", DefaultValueFactory = _ => 42 };
        var noStages = new Option<bool>("--no-stage-metrics") { Description = "Do not judge multi-stage methods after each stage." };
        var loraRank = new Option<int?>("--lora-rank")
        {
            Description = "Train LoRA adapters of this rank in stages 2 and 3 of every method instead of fine-tuning the U-Net "
                + "(at the Shapes LoRA learning rate, 1e-3); compare with a run without it in another --out folder.",
        };
        var optimizer8Bit = new Option<bool>("--optimizer-8bit")
        {
            Description = "Train every cell with 8-bit AdamW moments (block-wise quantized); compare with a run without it in another --out folder.",
        };
        var learningRateScales = new Option<string?>("--lr-scale")
        {
            Description = "Multiply stages' learning rates in every method's plan, e.g. 2=0.1 or 2=0.1,3=0.5 (a diagnostic; compare with a run "
                + "without it in another --out folder).",
        };
        var command = new Command("experiment", "Compare personalization methods on Shapes concepts: train each concept with each method, generate the prompts, "
            + "score identity, text and [V] attention; write results.csv/json, summary.md, scatter.png and grids.")
        {
            concepts, prompts, output, methods, quick, model, seeds, stepsScale, classImages, seed, noStages, loraRank, optimizer8Bit, learningRateScales,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            var world = ShapesWorld.Default;
            string? root = null;
            string Repo(string relative) => Path.Combine(root ??= RepoPaths.FindRoot(), relative);
            try
            {
                var specs = LoadConcepts(parse.GetValue(concepts) is { Length: > 0 } given ? given : [Repo(RepoPaths.Concepts)], world);
                var options = new PersonalizationExperimentOptions
                {
                    ModelFolder = parse.GetValue(model) ?? Repo(RepoPaths.ShapesModel),
                    Concepts = specs,
                    Prompts = ConceptPrompts.Load(parse.GetValue(prompts) ?? Repo(Prompts), world),
                    OutputFolder = parse.GetValue(output)!,
                    World = world,
                    TrainingSeed = parse.GetValue(seed),
                    StageMetrics = !parse.GetValue(noStages),
                    EightBitOptimizerStates = parse.GetValue(optimizer8Bit),
                };
                if (parse.GetValue(methods) is { } names) options = options with { Methods = PersonalizationMethods.ParseList(names) };
                if (parse.GetValue(quick)) options = options.Quick();
                if (parse.GetValue(seeds) is { } n) options = options with { Seeds = n };
                if (parse.GetValue(stepsScale) is { } x) options = options with { StepsScale = x };
                if (parse.GetValue(classImages) is { } k) options = options with { ClassImages = k };
                if (parse.GetValue(loraRank) is { } rank)
                {
                    if (rank < 1) throw new ArgumentException($"--lora-rank must be at least 1; got {rank}.");
                    options = options with { Lora = new AttnDreamBooth.Models.Lora.LoraOptions(Rank: rank) };
                }
                if (parse.GetValue(learningRateScales) is { } scales) options = options with { LearningRateScales = ParseLearningRateScales(scales) };
                options.Validate();
                return await RunAsync(console, options, ct);
            }
            catch (InvalidShapesSpecException e)
            {
                throw new ArgumentException(e.Message, e);
            }
        }, parse));
        return command;
    }

    /// <summary>Reads <c>--lr-scale</c>: comma-separated <c>stage=factor</c> pairs, stages 1–3, each at most once.</summary>
    internal static IReadOnlyDictionary<TrainingStage, double> ParseLearningRateScales(string text)
    {
        var scales = new Dictionary<TrainingStage, double>();
        foreach (string item in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var parts = item.Split('=', StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int stage) || stage is < 1 or > 3
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double factor) || !(factor > 0 && factor <= 1e3))
                throw new ArgumentException($"--lr-scale: '{item}' is not stage=factor with a stage 1–3 and a factor in (0, 1000] (e.g. 2=0.1).");
            if (!scales.TryAdd((TrainingStage)stage, factor)) throw new ArgumentException($"--lr-scale names stage {stage} twice.");
        }
        return scales;
    }

    internal static IReadOnlyList<ConceptSpec> LoadConcepts(IEnumerable<string> sources, ShapesWorld world)
    {
        var specs = new List<ConceptSpec>();
        foreach (string source in sources)
        {
            if (Directory.Exists(source)) specs.AddRange(ConceptSpec.LoadFolder(source, world));
            else specs.Add(ConceptSpec.Load(source, world));
        }
        if (specs.Count == 0) throw new ArgumentException("--concepts names no concept spec (an empty folder?).");
        return specs;
    }

    private static async Task<int> RunAsync(IAnsiConsole console, PersonalizationExperimentOptions options, CancellationToken ct)
    {
        console.MarkupLineInterpolated($"[bold]Experiment[/]: {options.Concepts.Count} concept(s) × {options.Methods.Count} method(s), {options.Prompts.Count} prompt(s) × {options.Seeds} seed(s)");
        foreach (var m in options.Methods)
        {
            var plan = options.PlanFor(m);
            console.MarkupLineInterpolated($"  {m.Name(),-20} {string.Join(" + ", plan.EnabledStages.Select(s => plan[s].Steps))} steps");
        }
        console.MarkupLineInterpolated($"  output {TerminalText.Safe(Path.GetFullPath(options.OutputFolder))}");
        PersonalizationExperimentResult? result = null;
        await console.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                var cells = ctx.AddTask("cells", maxValue: options.Concepts.Count * options.Methods.Count);
                var current = ctx.AddTask("starting", maxValue: 1);
                var progress = new SynchronousProgress<ExperimentProgress>(p =>
                {
                    string cell = $"{p.Concept} × {p.Method.Name()}";
                    switch (p.Phase)
                    {
                        case ExperimentPhase.CellReused:
                        case ExperimentPhase.CellFinished:
                            cells.Value = p.Cell;
                            break;
                        case ExperimentPhase.ClassImages:
                            current.Description = Markup.Escape($"{cell}: class images");
                            current.MaxValue = Math.Max(1, p.Total);
                            current.Value = p.Completed;
                            break;
                        case ExperimentPhase.Training when p.Training is { } t:
                            current.Description = Markup.Escape($"{cell}: stage {(int)t.Stage} loss {t.Loss:F4}");
                            current.MaxValue = Math.Max(1, t.TotalSteps);
                            current.Value = t.GlobalStep;
                            break;
                        case ExperimentPhase.Generating:
                            current.Description = Markup.Escape($"{cell}: generating");
                            current.MaxValue = Math.Max(1, p.Total);
                            current.Value = p.Completed;
                            break;
                        case ExperimentPhase.Reporting:
                            current.Description = "writing the report";
                            break;
                    }
                });
                try
                {
                    result = await PersonalizationExperiment.RunAsync(options, progress, ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    result = null;
                }
            });
        if (result is null)
        {
            console.MarkupLineInterpolated($"[yellow]Cancelled.[/] Finished cells stay in {TerminalText.Safe(Path.GetFullPath(options.OutputFolder))}; the same command continues with the others.");
            return 130;
        }
        var heights = result.Summary.SelectMany(s => s.HeatmapIoUByResolution.Keys).Distinct().OrderDescending().ToArray();
        var table = new Table().AddColumns(["method", "after", "images", "identity", "text", "concept present", "[[V]]-map IoU",
            .. heights.Select(h => string.Create(CultureInfo.InvariantCulture, $"IoU {h}×{h}"))]);
        foreach (var s in result.Summary)
            table.AddRow([s.Method.Name(), s.AfterStage is { } st ? $"stage {(int)st}" : "trained", s.Identity.Count.ToString(CultureInfo.InvariantCulture),
                F(s.Identity), F(s.Text), F(s.ConceptPresence), F(s.HeatmapIoU),
                .. heights.Select(h => s.HeatmapIoUByResolution.TryGetValue(h, out var e) ? F(e) : "–")]);
        console.Write(table);
        int reused = result.Cells.Count(c => c.Reused);
        console.MarkupLineInterpolated($"{result.Cells.Count - reused} cell(s) run, {reused} reused; the tables exclude tuning concepts.");
        foreach (string file in result.Files) console.MarkupLineInterpolated($"  wrote {TerminalText.Safe(file)}");
        return 0;
    }

    private static string F(ExperimentEstimate e) =>
        e.Count == 0 ? "–" : double.IsNaN(e.HalfWidth) ? e.Mean.ToString("F3", CultureInfo.InvariantCulture)
            : $"{e.Mean.ToString("F3", CultureInfo.InvariantCulture)} ± {e.HalfWidth.ToString("F3", CultureInfo.InvariantCulture)}";
}
