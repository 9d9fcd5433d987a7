using System.CommandLine;
using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using Spectre.Console;
using TorchSharp;
using ClipRgbImage = AttnDreamBooth.Imaging.RgbImage;

namespace AttnDreamBooth.Cli;

/// <summary><c>evaluate</c>: the paper's CLIP identity and text-alignment scores of a trained concept.</summary>
internal static class EvaluateCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string>("--model")
        {
            Description = "The base model the concept was trained on: a diffusers folder or a .safetensors single file (with --model-config).",
            Required = true,
        };
        var modelConfig = CliApp.ModelConfigOption();
        var concept = new Option<string>("--concept") { Description = "A concept folder written by train (or the run folder that holds it).", Required = true };
        var clip = new Option<string>("--clip") { Description = "A transformers CLIPModel folder with its tokenizer and preprocessor_config.json (the paper: openai/clip-vit-base-patch32).", Required = true };
        var images = new Option<string>("--images") { Description = "The concept's training photos (identity is measured against them).", Required = true };
        var prompts = new Option<string?>("--prompts") { Description = "Prompt file: one prompt per line with {} for \"[V] category\" (# comments), or the DreamBooth dataset's prompts_and_classes.txt. Default: the paper's list for the concept's category." };
        var perPrompt = new Option<int>("--images-per-prompt") { Description = "Images generated per prompt.", DefaultValueFactory = _ => 16 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps (DPM-Solver++).", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 7.5 };
        var seed = new Option<long>("--seed") { Description = "Image i of every prompt uses seed + i.", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch-size") { Description = "Images per generation batch (does not change the images).", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "Folder for report.json and grid.png.", DefaultValueFactory = _ => "evaluation" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var command = new Command("evaluate", "Score a trained concept with CLIP: identity (vs. the training photos) and text alignment, per prompt.")
        {
            model, concept, clip, images, prompts, perPrompt, steps, guidance, seed, batch, output, device, modelConfig,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            var limits = CliLimits.From(parse);
            var sources = LoadSources(parse.GetValue(images)!, limits);
            string deviceName = CliInput.Device(parse.GetValue(device)!);
            string conceptFolder = CliInput.ConceptFolder(parse.GetValue(concept)!);
            using var logging = CliLogging.For(console, parse);
            using var pipeline = CliInput.Model(parse.GetValue(model)!, parse.GetValue(modelConfig), logging).OnDevice(deviceName).WithResourceLimits(limits).Build(ct);
            var loaded = await PersonalizedModel.LoadAsync(conceptFolder, pipeline, ct);
            string? promptFile = parse.GetValue(prompts);
            var protocol = (promptFile is null ? EvaluationProtocol.Paper(loaded.Category) : EvaluationProtocol.WithPrompts(ReadPrompts(promptFile, loaded.Category))) with
            {
                ImagesPerPrompt = parse.GetValue(perPrompt),
                InferenceSteps = parse.GetValue(steps),
                GuidanceScale = parse.GetValue(guidance),
                Seed = parse.GetValue(seed),
            };
            string clipFolder = parse.GetValue(clip)!;
            using var evaluator = ConceptEvaluator.FromFolder(clipFolder, new torch.Device(deviceName), limits);
            var options = new ConceptEvaluationOptions { Protocol = protocol, GenerationBatchSize = parse.GetValue(batch) };
            console.MarkupLineInterpolated($"Evaluating [bold]{TerminalText.Safe(loaded.Token)}[/] ({TerminalText.Safe(loaded.Category)}): {protocol.Prompts.Count} prompts × {protocol.ImagesPerPrompt} images, {protocol.InferenceSteps} steps, guidance {protocol.GuidanceScale}, seeds {protocol.Seed}..{protocol.Seed + protocol.ImagesPerPrompt - 1}; {sources.Count} source photos.");
            // Written raw: Spectre would wrap the long lines at the console width.
            foreach (string estimateLine in TrainingEstimate.For(pipeline, pipeline.Plan, deviceName).DescribeEvaluation(protocol.Prompts.Count, protocol.ImagesPerPrompt, protocol.InferenceSteps))
                console.Profile.Out.Writer.WriteLine(TerminalText.Safe(estimateLine));
            console.Profile.Out.Writer.Flush();

            var result = await RunWithProgressAsync(console, evaluator, pipeline, sources, options, ct);
            console.Write(ScoreTable(result));
            string outDir = Path.GetFullPath(parse.GetValue(output)!);
            var written = EvaluationReport.Write(result, outDir, new EvaluationReport.Inputs(
                Path.GetFullPath(parse.GetValue(model)!), conceptFolder, Path.GetFullPath(clipFolder), Path.GetFullPath(parse.GetValue(images)!), sources.Count));
            console.MarkupLineInterpolated($"[green]Wrote[/] {TerminalText.Safe(written.Json)} and {TerminalText.Safe(written.Grid)}.");
            return 0;
        }, parse));
        return command;
    }

    /// <summary>The training photos, decoded as training decodes them (the same decoder and limits: EXIF orientation,
    /// transparency on white), sorted by file name.</summary>
    internal static IReadOnlyList<ClipRgbImage> LoadSources(string folder, AttnDreamBooth.IO.ResourceLimits limits)
    {
        string full = CliInput.PhotoFolder(folder);
        var files = Directory.EnumerateFiles(full)
            .Where(f => !Path.GetFileName(f).StartsWith('.') && Concept.ImageExtensions.Contains(Path.GetExtension(f)))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0) throw new CliUsageException($"--images '{full}' holds no JPEG, PNG or WebP file; give the folder with the concept's training photos.");
        return files.Select(f => RgbImage.Load(f, limits)).ToArray();
    }

    /// <summary>A prompt file: the dataset's <c>prompts_and_classes.txt</c> (the list for the category's kind) or one
    /// prompt per line.</summary>
    internal static IReadOnlyList<string> ReadPrompts(string path, string category)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The prompt file '{Path.GetFullPath(path)}' does not exist.", path);
        string text = File.ReadAllText(path);
        if (text.Contains("Object Prompts", StringComparison.Ordinal) && text.Contains("Live Subject Prompts", StringComparison.Ordinal))
            return EvaluationProtocol.FromPromptFile(text, category).Prompts;
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
        if (lines.Length == 0) throw new ArgumentException($"The prompt file '{path}' holds no prompt.", nameof(path));
        return lines;
    }

    private static async Task<ConceptEvaluation> RunWithProgressAsync(IAnsiConsole console, ConceptEvaluator evaluator, PersonalizationPipeline pipeline,
        IReadOnlyList<ClipRgbImage> sources, ConceptEvaluationOptions options, CancellationToken ct)
    {
        ConceptEvaluation? result = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var generating = ctx.AddTask("generating", maxValue: 1);
                var scoring = ctx.AddTask("CLIP scoring", maxValue: 3);
                var progress = new SynchronousProgress<EvaluationProgress>(p =>
                {
                    switch (p.Phase)
                    {
                        case EvaluationPhase.GeneratingImages:
                            generating.MaxValue = Math.Max(1, p.Total);
                            generating.Value = p.Completed;
                            generating.Description = $"generating {p.Completed}/{p.Total}";
                            break;
                        case EvaluationPhase.Completed:
                            scoring.Value = scoring.MaxValue;
                            break;
                        default:
                            if (p.Completed == p.Total) scoring.Increment(1);
                            scoring.Description = $"CLIP: {p.Phase}";
                            break;
                    }
                });
                result = await evaluator.EvaluateAsync(pipeline, sources, options, progress, ct);
            });
        return result!;
    }

    private static Table ScoreTable(ConceptEvaluation result)
    {
        var table = new Table().Title($"CLIP scores of {Markup.Escape(TerminalText.Safe(result.Token))} ({Markup.Escape(TerminalText.Safe(result.Category))})")
            .AddColumn("prompt").AddColumn(new TableColumn("identity").RightAligned()).AddColumn(new TableColumn("text").RightAligned());
        foreach (var p in result.PerPrompt)
            table.AddRow(Markup.Escape(TerminalText.Safe(p.Prompt)), p.Identity.ToString("F4", System.Globalization.CultureInfo.InvariantCulture), p.Text.ToString("F4", System.Globalization.CultureInfo.InvariantCulture));
        table.AddEmptyRow();
        table.AddRow($"[bold]overall[/] ({result.GeneratedCount} images, {result.SourceCount} photos)",
            $"[bold]{result.Identity.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)}[/]",
            $"[bold]{result.Text.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)}[/]");
        return table;
    }
}
