using System.CommandLine;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>The command line: <c>train</c>, <c>generate</c>, <c>evaluate</c>, <c>export</c>, <c>shapes</c>, and with no arguments the demo.</summary>
internal static class CliApp
{
    /// <summary>Shows stack traces of errors (otherwise one line each).</summary>
    internal static readonly Option<bool> Verbose = new("--verbose") { Description = "Show the library's log lines (what was loaded, stage settings, checkpoints) and the full stack trace of an error.", Recursive = true };

    /// <summary>The command line as given (the resume hint repeats it).</summary>
    private static readonly AsyncLocal<string[]?> Arguments = new();

    public static async Task<int> RunAsync(string[] args, IAnsiConsole? console = null, CancellationToken ct = default)
    {
        // libtorch reads its huge-page switch at its first allocation: let the library set it before any tensor exists.
        System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(typeof(AttnDreamBoothException).Module.ModuleHandle);
        console ??= AnsiConsole.Console;
        Arguments.Value = args;
        var root = new RootCommand("AttnDreamBooth: personalize Stable Diffusion with a few photos. Without a command, runs the demo on the bundled tiny model.");
        root.Subcommands.Add(TrainCommand(console));
        root.Subcommands.Add(GenerateCommand(console));
        root.Subcommands.Add(EvaluateCommand.Create(console));
        root.Subcommands.Add(ExportCommand.Create(console));
        var shapes = ShapesCommand.Create(console);
        shapes.Subcommands.Add(ShapesPretrainCommand.Create(console));
        shapes.Subcommands.Add(ShapesQualityCommand.Create(console));
        shapes.Subcommands.Add(ShapesDiagnoseCommand.Create(console));
        shapes.Subcommands.Add(ShapesExperimentCommand.Create(console));
        root.Subcommands.Add(shapes);
        var demoOut = new Option<string>("--out") { Description = "Output folder of the demo.", DefaultValueFactory = _ => "out" };
        root.Options.Add(demoOut);
        root.Options.Add(Verbose);
        root.Options.Add(CliLimits.Option);
        root.SetAction((parse, ct) => Guarded(console, () => Demo.RunAsync(console, parse.GetValue(demoOut)!, ct), parse));
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // System.CommandLine would echo the offending arguments raw; they may hold terminal escapes. One line per error,
            // and usage errors exit 2 like every other error.
            var writer = console.Profile.Out.Writer;
            foreach (var error in parsed.Errors) writer.WriteLine($"error: {TerminalText.Safe(CliErrors.OneLine(error.Message))}");
            string command = parsed.CommandResult.Command is RootCommand ? "" : " " + parsed.CommandResult.Command.Name;
            writer.WriteLine($"(run AttnDreamBooth.Cli{command} --help for the options)");
            writer.Flush();
            return 2;
        }
        // Ctrl-C is handled by the caller's token (Program: Interruption), not by System.CommandLine's 2-second kill.
        return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, ct);
    }

    private static Command TrainCommand(IAnsiConsole console)
    {
        var model = new Option<string>("--model") { Description = "Base model: a diffusers folder, Hugging Face cache entry, or a .safetensors single file (with --model-config).", Required = true };
        var modelConfig = ModelConfigOption();
        var images = new Option<string>("--images") { Description = "Folder with 3–5 photos of the subject.", Required = true };
        var token = new Option<string>("--token") { Description = "Identifier token [V] (new, or an existing rare token such as sks).", DefaultValueFactory = _ => "new_concept_v0" };
        var category = new Option<string>("--category") { Description = "Super-category word, e.g. dog.", Required = true };
        var output = new Option<string>("--out") { Description = "Where to write the personalized model.", Required = true };
        var preset = new Option<string>("--preset") { Description = "Stage plan: paper or fast.", DefaultValueFactory = _ => "paper" };
        var seed = new Option<long>("--seed") { Description = "Seed of every random stream.", DefaultValueFactory = _ => 42 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var checkpoints = new Option<string?>("--checkpoints") { Description = "Folder for resumable checkpoints (default: <out>/checkpoints)." };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in the checkpoint folder." };
        var steps = new Option<string?>("--steps") { Description = "Override the steps per stage as s1,s2,s3 (0 skips a stage)." };
        var batch = new Option<int?>("--batch-size") { Description = "Override the batch size of every stage." };
        var every = new Option<int?>("--checkpoint-every") { Description = "Steps between checkpoints (default: the preset's)." };
        var gradientCheckpointing = new Option<bool>("--gradient-checkpointing") { Description = "Recompute U-Net activations in backward (less memory)." };
        var frozenDType = new Option<string?>("--frozen-dtype") { Description = "Hold frozen weights in bf16 or fp16 during training." };
        frozenDType.AcceptOnlyFromAmong("bf16", "fp16");
        var releaseVae = new Option<bool>("--release-vae") { Description = "Free the VAE once the latents are cached." };
        var releaseTextEncoder = new Option<bool>("--release-text-encoder")
        {
            Description = "Free the text encoder in the stages after the embedding stage (their prompt conditioning is computed once).",
        };
        var optimizer8Bit = new Option<bool>("--optimizer-8bit") { Description = "Store AdamW's moments in 8 bits (block-wise quantized; ~1/4 of the optimizer memory)." };
        var channelsLast = new Option<bool>("--channels-last")
        {
            Description = "Lay the U-Net's convolution weights out channels-last while training (faster on CPU; not with --optimizer-8bit).",
        };
        var force = new Option<bool>("--force") { Description = "Use an output folder that holds another run's concept or checkpoints (the concept is replaced)." };
        var loraRank = new Option<int?>("--lora-rank")
        {
            Description = "Train LoRA adapters of this rank in stages 2 and 3 instead of fine-tuning the U-Net (the base weights stay frozen; the concept is saved as embedding + LoRA).",
        };
        var loraAlpha = new Option<double?>("--lora-alpha") { Description = "LoRA alpha: the update is scaled by alpha / rank (default: the rank, i.e. 1)." };
        var loraModules = new Option<string?>("--lora-modules")
        {
            Description = "Stage 3's LoRA layers: attention, transformer (default: attention + feed-forward + transformer projections) or all (+ ResNet convs). Stage 2 always uses the attn2 projections.",
        };
        loraModules.AcceptOnlyFromAmong("attention", "transformer", "all");
        var loraLearningRate = new Option<double?>("--lora-learning-rate")
        {
            Description = $"Learning rate of stages 2 and 3 with --lora-rank (default {DefaultLoraLearningRate:g}; adapters need more than full fine-tuning).",
        };
        var command = new Command("train", "Train a concept with AttnDreamBooth's three stages.")
        {
            model, images, token, category, output, preset, seed, device, checkpoints, resume, steps, batch, every, gradientCheckpointing, frozenDType, releaseVae, releaseTextEncoder,
            optimizer8Bit, channelsLast, force, loraRank, loraAlpha, loraModules, loraLearningRate, modelConfig,
        };
        command.SetAction((parse, ct) => Guarded(console, async () =>
        {
            // The cheap checks first (arguments, paths, photos), then the expensive model load.
            string outDir = parse.GetValue(output)!;
            bool overwrite = parse.GetValue(force);
            string deviceName = CliInput.Device(parse.GetValue(device)!);
            var basePlan = parse.GetValue(preset)!.Trim().ToLowerInvariant() switch
            {
                "paper" => StagePlan.Paper,
                "fast" => StagePlan.Fast,
                var other => throw new CliUsageException($"--preset '{other}' is not a preset; use paper (the paper's steps) or fast (a shorter stage 3)."),
            };
            if (parse.GetValue(channelsLast) && parse.GetValue(optimizer8Bit))
                throw new CliUsageException("--channels-last cannot be combined with --optimizer-8bit: the fused 8-bit update needs the standard layout. Drop one of them.");
            var concept = CliInput.Photos(parse.GetValue(images)!, parse.GetValue(category)!, parse.GetValue(token)!);
            using var logging = CliLogging.For(console, parse);
            var builder = CliInput.Model(parse.GetValue(model)!, parse.GetValue(modelConfig), logging);
            TrainOutput.RequireOwnConcept(Path.Combine(outDir, "concept"), overwrite);
            string checkpointDir = parse.GetValue(checkpoints) ?? Path.Combine(outDir, "checkpoints");
            var plan = ApplyOverrides(basePlan, parse.GetValue(steps), parse.GetValue(batch), parse.GetValue(every));
            plan = ApplyLora(plan, parse.GetValue(loraRank), parse.GetValue(loraAlpha), parse.GetValue(loraModules), parse.GetValue(loraLearningRate));
            var training = new TrainingOptions
            {
                Seed = parse.GetValue(seed),
                CheckpointDirectory = checkpointDir,
                GradientCheckpointing = parse.GetValue(gradientCheckpointing),
                FrozenWeightsDType = parse.GetValue(frozenDType) switch
                {
                    "bf16" => TorchSharp.torch.ScalarType.BFloat16,
                    "fp16" => TorchSharp.torch.ScalarType.Float16,
                    _ => null,
                },
                ReleaseVaeDuringTraining = parse.GetValue(releaseVae),
                ReleaseTextEncoderDuringTraining = parse.GetValue(releaseTextEncoder),
                EightBitOptimizerStates = parse.GetValue(optimizer8Bit),
                ChannelsLast = parse.GetValue(channelsLast),
                OverwriteOtherRuns = overwrite,
            };
            TrainOutput.PrintHeader(console, parse.GetValue(model)!, concept, parse.GetValue(images)!, outDir, deviceName, parse.GetValue(preset)!.Trim().ToLowerInvariant(), plan);
            // Before loading when the headers tell: what loading frees would otherwise stay in glibc's heaps (a whole
            // real-size stage-3 run peaked at 10.04–10.08 GB with the threshold set after loading, 9.61 GB with it set
            // before; docs/training-at-scale.md).
            bool heapSet = deviceName == "cpu" && UNetSizeOnDisk.Parameters(parse.GetValue(model)!) >= TrainingEstimate.RealSizeParameters
                && NativeHeap.ReturnLargeBlocksToTheSystem();
            using var pipeline = builder
                .OnDevice(deviceName)
                .WithResourceLimits(CliLimits.From(parse))
                .WithStages(plan)
                .WithTrainingOptions(training)
                .Build(ct);
            TrainOutput.RequireWritable(outDir, pipeline);
            string? resumeFrom = parse.GetValue(resume) ? TrainOutput.ResumePoint(console, checkpointDir, plan) : null;
            int encodes = training.Data.FreshAugmentationEveryStep ? 0 : concept.Images.Count * training.Data.VariantsPerImage;
            var estimate = TrainingEstimate.For(pipeline, plan, deviceName) with { LatentEncodes = encodes };
            TrainOutput.PrintEstimate(console, estimate);
            if (estimate.RealSizeOnCpu && !heapSet) NativeHeap.ReturnLargeBlocksToTheSystem();
            var trained = await TrainWithProgressAsync(console, pipeline, concept, resumeFrom, ct);
            await trained.SaveAsync(Path.Combine(outDir, "concept"), overwrite, ct);
            LossPlot.Save(trained.LossHistory, StageStarts(plan), Path.Combine(outDir, "loss.png"));
            // Written raw: Spectre would wrap the paths at the console width.
            console.Profile.Out.Writer.WriteLine($"Saved the concept to {TerminalText.Safe(Path.Combine(outDir, "concept"))} and the loss curve to {TerminalText.Safe(Path.Combine(outDir, "loss.png"))}.");
            console.Profile.Out.Writer.Flush();
            return 0;
        }, parse));
        return command;
    }

    private static Command GenerateCommand(IAnsiConsole console)
    {
        var model = new Option<string?>("--model")
        {
            Description = "The base model the concept was trained on: a diffusers folder or a .safetensors single file (with --model-config). Default for a concept "
                          + "written by train: the base model its metadata records, relative to the folder.",
        };
        var modelConfig = ModelConfigOption();
        var force = new Option<bool>("--force") { Description = "Load the concept onto --model even though it was trained on another base model." };
        var dtype = new Option<string>("--dtype") { Description = "Weights' precision for inference: fp32, bf16 (CPU or GPU) or fp16 (GPU).", DefaultValueFactory = _ => "fp32" };
        var concept = new Option<string?>("--concept")
        {
            Description = "A concept folder written by train, or one made elsewhere: a folder with learned_embeds.safetensors (+ unet/) or an embedding file " +
                          "(token from the file). Without it: the base model alone.",
        };
        var lora = new Option<string?>("--lora") { Description = "A LoRA file (kohya or diffusers) merged into an imported concept's U-Net." };
        var loraScale = new Option<double>("--lora-scale") { Description = "Strength of --lora.", DefaultValueFactory = _ => 1.0 };
        var conceptCategory = new Option<string?>("--category") { Description = "Category word of an imported concept, so {} expands to \"token category\"." };
        var prompt = new Option<string>("--prompt") { Description = "The prompt; {} stands for \"[V] category\".", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for the PNG images.", Required = true };
        var heatmap = new Option<bool>("--heatmap") { Description = "Also write the [V] token's cross-attention heatmap overlays." };
        var count = new Option<int>("--count") { Description = "Images to generate.", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 50 };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 7.5 };
        var sampler = new Option<string>("--sampler")
        {
            Description = $"Sampler: {string.Join(", ", AttnDreamBooth.Schedulers.DiffusionSamplers.Names)} (add -karras for Karras sigmas where the sampler has them).",
            DefaultValueFactory = _ => "dpm++",
        };
        var negative = new Option<string>("--negative-prompt") { Description = "What the images should not show.", DefaultValueFactory = _ => "" };
        var width = new Option<int?>("--width") { Description = "Image width in pixels (default: the model's resolution)." };
        var height = new Option<int?>("--height") { Description = "Image height in pixels (default: the model's resolution)." };
        var seed = new Option<long>("--seed") { Description = "Seed of the first image (image i uses seed + i).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var command = new Command("generate", "Render a prompt with the base model or a trained concept.")
        {
            model, concept, prompt, output, heatmap, count, steps, guidance, sampler, seed, device, negative, width, height, lora, loraScale, conceptCategory,
            modelConfig, force, dtype,
        };
        command.SetAction((parse, ct) => Guarded(console, async () =>
        {
            // "dpm" was the name of DPM-Solver++ before the other samplers. The options are checked before the model is loaded.
            string samplerName = parse.GetValue(sampler) is "dpm" ? "dpm++" : parse.GetValue(sampler)!;
            var options = new GenerationOptions
            {
                BatchSize = parse.GetValue(count),
                Steps = parse.GetValue(steps),
                GuidanceScale = parse.GetValue(guidance),
                Sampler = samplerName,
                NegativePrompt = parse.GetValue(negative)!,
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Seed = parse.GetValue(seed),
            };
            options.Validate();
            if (parse.GetValue(lora) is not null && parse.GetValue(concept) is null)
                throw new CliUsageException("--lora is merged into an imported concept; give the concept's embedding with --concept.");
            string deviceName = CliInput.Device(parse.GetValue(device)!);
            var precision = parse.GetValue(dtype)!.Trim().ToLowerInvariant() switch
            {
                "fp32" or "float32" => TorchSharp.torch.ScalarType.Float32,
                "bf16" or "bfloat16" => TorchSharp.torch.ScalarType.BFloat16,
                "fp16" or "float16" => TorchSharp.torch.ScalarType.Float16,
                var other => throw new CliUsageException($"--dtype '{other}' is not a precision; use fp32, bf16 (CPU or GPU) or fp16 (GPU)."),
            };
            if (precision == TorchSharp.torch.ScalarType.Float16 && deviceName == "cpu")
                throw new CliUsageException("--dtype fp16 is for GPUs (libtorch computes it about 6 times slower than fp32 on the CPU); use --dtype bf16 on the CPU.");
            string? conceptPath = parse.GetValue(concept) is { } given ? CliInput.ConceptFolder(given) : null;
            string baseModel = parse.GetValue(model) ?? BaseModelOf(conceptPath);
            if (conceptPath is not null && parse.GetValue(model) is not null) CliInput.RequireSameBase(conceptPath, baseModel, parse.GetValue(force));
            using var logging = CliLogging.For(console, parse);
            var builder = parse.GetValue(model) is null && File.Exists(baseModel) && parse.GetValue(modelConfig) is null
                ? throw new CliUsageException($"the concept records the single-file base model '{baseModel}'; give its config folder with --model-config (a diffusers folder of the same family).")
                : CliInput.Model(baseModel, parse.GetValue(modelConfig), logging);
            using var pipeline = builder.OnDevice(deviceName).WithDType(precision).WithResourceLimits(CliLimits.From(parse)).Build(ct);
            string? token = null;
            if (conceptPath is not null)
                token = (await ConceptSources.LoadAsync(conceptPath, pipeline, parse.GetValue(conceptCategory), parse.GetValue(lora), parse.GetValue(loraScale), ct)).Token;
            options = options with { HeatmapTokens = parse.GetValue(heatmap) && token is not null ? [token] : [] };
            if (parse.GetValue(heatmap) && token is null)
                console.Profile.Out.Writer.WriteLine("note: --heatmap shows a concept's token; without --concept no heatmap is written.");
            var results = await GenerationDisplay.RunAsync(console, $"generating {options.BatchSize} image(s) with {samplerName}",
                progress => pipeline.GenerateAsync(parse.GetValue(prompt)!, options, progress, ct));
            WriteImages(console, results, parse.GetValue(output)!, "image", token);
            if (token is not null && options.HeatmapTokens.Count > 0 && results.All(r => !r.Heatmaps.ContainsKey(token)))
                console.Profile.Out.Writer.WriteLine($"note: no heatmap was possible: the prompt does not contain the concept's token '{TerminalText.Safe(token)}'; write {{}} (or the token) in the prompt.");
            return 0;
        }, parse));
        return command;
    }

    internal static Option<string?> ModelConfigOption() => new("--model-config")
    {
        Description = "With a single-file --model: a diffusers folder of the same family that provides the configs, tokenizer and scheduler (weights not needed).",
    };

    /// <summary>Without <c>--model</c>: the base model a saved concept records (the concept may have moved together with it).</summary>
    private static string BaseModelOf(string? concept)
    {
        if (concept is not null && File.Exists(Path.Combine(concept, PersonalizedModel.MetadataFile))) return PersonalizedModel.FindBaseModel(concept);
        throw new CliUsageException("--model is required unless --concept names a concept folder written by train (which records its base model).");
    }

    internal static void WriteImages(IAnsiConsole console, IReadOnlyList<GeneratedImage> results, string folder, string stem, string? heatmapToken)
    {
        Directory.CreateDirectory(folder);
        foreach (var image in results)
        {
            string path = Path.Combine(folder, $"{stem}-{image.Seed}.png");
            image.SavePng(path);
            console.MarkupLineInterpolated($"  wrote {TerminalText.Safe(path)}");
            if (heatmapToken is not null && image.Heatmaps.ContainsKey(heatmapToken))
            {
                string heatPath = Path.Combine(folder, $"{stem}-{image.Seed}-heatmap.png");
                var png = image.EncodeHeatmapOverlayPng(heatmapToken);
                AttnDreamBooth.IO.AtomicFile.Write(heatPath, s => s.Write(png));
                console.MarkupLineInterpolated($"  wrote {TerminalText.Safe(heatPath)}");
            }
        }
    }

    internal static Task<PersonalizedModel> TrainWithProgressAsync(IAnsiConsole console, PersonalizationPipeline pipeline, Concept concept, string? resumeFrom, CancellationToken ct) =>
        WithTrainingProgressAsync(console, pipeline.Plan, progress => pipeline.TrainAsync(concept, progress, ct, resumeFrom));

    /// <summary>Runs <paramref name="work"/> under the training display of <paramref name="plan"/> (<see cref="TrainingDisplay"/>).</summary>
    internal static Task<T> WithTrainingProgressAsync<T>(IAnsiConsole console, StagePlan plan, Func<IProgress<TrainingProgress>, Task<T>> work) =>
        TrainingDisplay.RunAsync(console, plan, work);

    internal static StagePlan ApplyOverrides(StagePlan plan, string? steps, int? batchSize, int? checkpointEvery)
    {
        if (steps is not null)
        {
            var parts = steps.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length != StagePlan.Stages.Count || !parts.All(p => int.TryParse(p, out int n) && n >= 0))
                throw new ArgumentException($"--steps expects three non-negative integers such as 60,100,200; got '{steps}'.", nameof(steps));
            plan = plan.WithStepsOrSkip(parts.Select(int.Parse).ToArray());
        }
        if (batchSize is { } b) plan = plan.WithBatchSize(b);
        if (checkpointEvery is { } e) plan = plan with { CheckpointInterval = e };
        plan.Validate();
        return plan;
    }

    /// <summary>Learning rate of the LoRA stages when <c>--lora-learning-rate</c> is not given (diffusers' DreamBooth-LoRA example).</summary>
    internal const double DefaultLoraLearningRate = 1e-4;

    /// <summary>The plan with LoRA stages 2 and 3 when <paramref name="rank"/> is given; the other LoRA flags need it.</summary>
    internal static StagePlan ApplyLora(StagePlan plan, int? rank, double? alpha, string? modules, double? learningRate)
    {
        if (rank is not { } r)
        {
            if (alpha is not null || modules is not null || learningRate is not null)
                throw new ArgumentException("--lora-alpha, --lora-modules and --lora-learning-rate configure LoRA training; give --lora-rank too.");
            return plan;
        }
        var stage3 = modules switch
        {
            "attention" => AttnDreamBooth.Models.Lora.LoraUNetModules.Attention,
            "all" => AttnDreamBooth.Models.Lora.LoraUNetModules.All,
            _ => AttnDreamBooth.Models.Lora.LoraUNetModules.Transformer,
        };
        var options = new AttnDreamBooth.Models.Lora.LoraOptions(Rank: r, Alpha: alpha);
        plan = plan.WithLora(options, learningRate ?? DefaultLoraLearningRate).WithLora(TrainingStage.UNet, options, stage3);
        plan.Validate();
        return plan;
    }

    /// <summary>Where each enabled stage starts in the loss history, with its label for the loss plot.</summary>
    internal static IReadOnlyList<(int Start, string Label)> StageStarts(StagePlan plan)
    {
        var starts = new List<(int, string)>();
        int total = 0;
        foreach (var stage in plan.EnabledStages)
        {
            starts.Add((total, $"stage {(int)stage} {stage.DisplayName()}"));
            total += plan[stage].Steps;
        }
        return starts;
    }

    internal static Task<int> Guarded(IAnsiConsole console, Func<Task<int>> action, ParseResult? parse = null) =>
        CliErrors.GuardedAsync(console, action, parse?.GetValue(Verbose) ?? false, Arguments.Value ?? []);
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread, in order.</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
