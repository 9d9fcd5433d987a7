using System.CommandLine;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary><c>shapes pretrain</c>: pretrains the Shapes model from scratch, with checkpoints, resume and export.</summary>
internal static class ShapesPretrainCommand
{
    public const string TokenizerFolder = "tests/fixtures/tiny-sd1/pipeline/tokenizer";

    public static Command Create(IAnsiConsole console)
    {
        var output = new Option<string>("--out") { Description = "Run folder: checkpoints/ and the exported model/ go here.", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in <out>/checkpoints." };
        var seed = new Option<long>("--seed") { Description = "Seed of the data, the initial weights and every random stream.", DefaultValueFactory = _ => PretrainingRecipe.Default.Seed };
        var steps = new Option<string?>("--steps") { Description = "Steps as vae,unet (default: the recipe's)." };
        var tiny = new Option<bool>("--tiny") { Description = "A very small architecture (for trying the command; the result is not useful)." };
        var export = new Option<string?>("--export") { Description = "Model folder to write when training finishes (default: <out>/model)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = $"CLIP tokenizer folder (default: the repository's {TokenizerFolder})." };
        var recipeFile = new Option<string?>("--recipe") { Description = "A recipe JSON (as written into checkpoints and the model's manifest) instead of the default recipe; --seed and --steps still apply when given." };
        var vaeFrom = new Option<string?>("--vae-from") { Description = "Start from this trained VAE folder instead of training one (VAE steps 0 unless --recipe or --steps gives a VAE phase, which then fine-tunes the folder's VAE)." };
        var initFrom = new Option<string?>("--init-from") { Description = "Continue pretraining from this Shapes model folder (its VAE, text encoder and U-Net) under the recipe's fresh optimizer and schedule (VAE steps 0 unless --recipe or --steps gives a VAE phase, which then fine-tunes the folder's VAE)." };
        var every = new Option<int>("--checkpoint-minutes") { Description = "Minutes between checkpoints.", DefaultValueFactory = _ => 4 };
        var command = new Command("pretrain", "Pretrain the Shapes text-to-image model (VAE, then text encoder + U-Net) from scratch.")
        {
            output, resume, seed, steps, tiny, export, tokenizer, every, recipeFile, vaeFrom, initFrom,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            string outDir = parse.GetValue(output)!;
            var recipe = parse.GetValue(recipeFile) is { } recipePath
                ? PretrainingRecipe.FromJson(File.ReadAllText(AttnDreamBooth.IO.RegularFile.Require(recipePath)))
                : PretrainingRecipe.Default;
            // An option with a default value has an (implicit) result even when not given: only a typed --seed replaces a recipe file's seed.
            if (parse.GetResult(seed) is { Implicit: false } || parse.GetValue(recipeFile) is null) recipe = recipe with { Seed = parse.GetValue(seed) };
            // A recipe file given with --init-from keeps its VAE phase: it fine-tunes the folder's VAE.
            if (parse.GetValue(vaeFrom) is not null || (parse.GetValue(initFrom) is not null && parse.GetValue(recipeFile) is null)) recipe = recipe with { VaeSteps = 0 };
            if (parse.GetValue(tiny)) recipe = recipe with { Architecture = ShapesModelArchitecture.Tiny, VaeBatchSize = 8, UNetBatchSize = 8 };
            if (parse.GetValue(steps) is { } s)
            {
                var parts = s.Split(',', StringSplitOptions.TrimEntries);
                if (parts.Length != 2 || !int.TryParse(parts[0], out int v) || !int.TryParse(parts[1], out int u) || v < 0 || u < 0)
                    throw new ArgumentException($"--steps expects two non-negative integers such as 600,1500; got '{s}'.", nameof(steps));
                recipe = recipe with { VaeSteps = v, UNetSteps = u };
            }
            if (parse.GetValue(every) < 1) throw new ArgumentException("--checkpoint-minutes must be at least 1.", nameof(every));
            string tokenizerFolder = parse.GetValue(tokenizer) ?? Path.Combine(FindRepoRoot(), TokenizerFolder);
            var options = new PretrainingOptions
            {
                CheckpointDirectory = Path.Combine(outDir, "checkpoints"),
                TokenizerFolder = tokenizerFolder,
                Resume = parse.GetValue(resume),
                CheckpointInterval = TimeSpan.FromMinutes(parse.GetValue(every)),
                VaeFolder = parse.GetValue(vaeFrom),
                InitialModelFolder = parse.GetValue(initFrom),
            };
            var source = new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize);
            var trainer = new ShapesPretrainer(recipe, source, options);
            console.MarkupLineInterpolated($"Pretraining: seed {recipe.Seed}, VAE {recipe.VaeSteps} steps × {recipe.VaeBatchSize}, U-Net {recipe.UNetSteps} steps × {recipe.UNetBatchSize}, checkpoints in {options.CheckpointDirectory}.");
            PretrainingResult? result = null;
            await console.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var vaeTask = ctx.AddTask("VAE", maxValue: Math.Max(1, recipe.VaeSteps));
                    var unetTask = ctx.AddTask("text encoder + U-Net", maxValue: Math.Max(1, recipe.UNetSteps));
                    if (recipe.VaeSteps == 0) vaeTask.Value = 1;
                    int lastLogged = -1;
                    var logLine = LogLineSink(console, Console.IsErrorRedirected);
                    var progress = new SynchronousProgress<PretrainingProgress>(p =>
                    {
                        var task = p.Phase == PretrainingPhase.Vae ? vaeTask : unetTask;
                        if (p.Phase == PretrainingPhase.UNet) vaeTask.Value = vaeTask.MaxValue;
                        task.Value = p.Step;
                        string eta = p.EstimatedRemaining is { } r ? $"{(int)r.TotalHours}:{r.Minutes:D2}:{r.Seconds:D2}" : "?";
                        task.Description = $"{(p.Phase == PretrainingPhase.Vae ? "VAE" : "text encoder + U-Net")} loss {p.Loss:F4} lr {p.LearningRate:G3} {p.SecondsPerStep:F2} s/step, all done in {eta}";
                        // Plain lines too, so a log file of a background run shows the curve.
                        if (p.GlobalStep % 10 == 0 || p.CheckpointPath is not null || p.GlobalStep == p.TotalSteps)
                        {
                            if (p.GlobalStep != lastLogged)
                            {
                                lastLogged = p.GlobalStep;
                                logLine($"[{DateTime.UtcNow:HH:mm:ss}] {p.Phase} step {p.Step}/{p.PhaseSteps} loss {p.Loss:F5} lr {p.LearningRate:G3} {p.SecondsPerStep:F2} s/step eta {eta}{(p.CheckpointPath is null ? "" : " checkpoint " + p.CheckpointPath)}");
                            }
                        }
                    });
                    result = await trainer.RunAsync(progress, ct);
                });
            string modelDir = parse.GetValue(export) ?? Path.Combine(outDir, "model");
            var files = ShapesModelExporter.Export(result!.CheckpointPath, tokenizerFolder, modelDir, notes: new Dictionary<string, string>
            {
                ["command"] = "dotnet run --project samples/AttnDreamBooth.Cli -c Release -- shapes pretrain " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).SkipWhile(a => a != "pretrain").Skip(1)),
            });
            console.MarkupLineInterpolated($"[green]Exported[/] {modelDir}: {files.Count} files, {files.Sum(f => f.Bytes) / 1e6:F1} MB (VAE {result.State.VaeSeconds / 60:F1} min, U-Net {result.State.UNetSeconds / 60:F1} min).");
            return 0;
        }));
        return command;
    }

    /// <summary>Where the plain progress lines go. Standard error keeps them for the log file of a background run; but
    /// when standard error is the terminal the live progress bars are drawn on, a line written there lands inside the
    /// bars' region and the next redraw smears it across the screen, so it goes through the console instead, which prints
    /// it above the bars.</summary>
    internal static Action<string> LogLineSink(IAnsiConsole console, bool errorRedirected)
    {
        if (console.Profile.Capabilities.Interactive && !errorRedirected) return line => console.WriteLine(line);
        return Console.Error.WriteLine;
    }

    internal static string FindRepoRoot()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (Directory.Exists(Path.Combine(dir.FullName, TokenizerFolder))) return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"The CLIP tokenizer '{TokenizerFolder}' was not found above the working directory; pass --tokenizer.");
    }
}
