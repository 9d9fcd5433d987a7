using System.Diagnostics;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Runs the staged AttnDreamBooth training loop on the calling thread (the pipeline gives it a dedicated one:
/// dispose scopes and grad mode are per thread). Handles checkpoints, resume, cancellation and divergence.
/// </summary>
internal sealed partial class PersonalizationTrainer
{
    private readonly StableDiffusionComponents _components;
    private readonly ConceptEmbedding _concept;
    private readonly StagePlan _plan;
    private readonly TrainingOptions _options;
    private readonly ILogger _logger;
    private readonly IProgress<TrainingProgress>? _progress;
    private readonly Func<string, GenerationOptions, CancellationToken, IReadOnlyList<GeneratedImage>>? _render;
    private readonly List<double> _lossHistory = [];
    private RandomStreams? _priorStreams;
    private string? _lastCheckpoint;
    private int _lastCheckpointGlobalStep = -1;
    private LoraNetwork? _lora;
    private Generator? _loraDropout;
    public PersonalizationTrainer(StableDiffusionComponents components, ConceptEmbedding concept, StagePlan plan, TrainingOptions options,
        ILogger logger, IProgress<TrainingProgress>? progress,
        Func<string, GenerationOptions, CancellationToken, IReadOnlyList<GeneratedImage>>? render)
    {
        _components = components;
        _concept = concept;
        _plan = plan;
        _options = options;
        _logger = logger;
        _progress = progress;
        _render = render;
    }

    /// <summary>The concept's category word, recorded in every checkpoint.</summary>
    public string Category { get; init; } = "";

    /// <summary>The per-step losses so far (including those restored from a checkpoint).</summary>
    public IReadOnlyList<double> LossHistory => _lossHistory;

    /// <summary>After a run whose U-Net stages all trained LoRA adapters: the adapters, merged into the U-Net's weights and
    /// off their hooks (the concept is saved as embedding + this network). Null otherwise; the caller owns it.</summary>
    public LoraNetwork? TrainedLora { get; private set; }

    /// <summary>Refuses settings that cannot work together, before any work.</summary>
    /// <exception cref="InvalidStagePlanException">LoRA dropout with gradient checkpointing.</exception>
    public static void CheckCompatible(StagePlan plan, TrainingOptions options)
    {
        if (!options.GradientCheckpointing) return;
        foreach (var stage in plan.EnabledStages)
        {
            if (plan[stage].Lora is { Dropout: > 0 })
                throw new InvalidStagePlanException(stage, "Lora.Dropout", "Must be 0 with TrainingOptions.GradientCheckpointing: a checkpointed block is recomputed "
                    + "in backward and would draw another dropout mask than its forward pass.");
        }
    }

    /// <summary>Trains every enabled stage.</summary>
    /// <param name="prompt">The training prompt, containing the identifier token.</param>
    /// <param name="categoryTokenId">The category word's first sub-token id (its attention map is the reference for [V]'s).</param>
    /// <param name="imageCount">Number of concept images.</param>
    /// <param name="augment">Returns image i, augmented with the given random source, as [3, H, W] in [-1, 1].</param>
    /// <param name="fingerprint">Identifies the run; a checkpoint of another run is refused.</param>
    /// <param name="resumeFrom">A checkpoint folder (or a folder of checkpoints) to continue from, or null.</param>
    /// <param name="ct">Checked between steps.</param>
    /// <param name="prior">The class images of the prior-preservation loss; required when a stage of the plan uses it.</param>
    public void Run(string prompt, int categoryTokenId, int imageCount, Func<int, SeededRandom, Tensor> augment, string fingerprint,
        string? resumeFrom, CancellationToken ct, PriorPreservationData? prior = null)
    {
        try
        {
            RunStages(prompt, categoryTokenId, imageCount, augment, fingerprint, resumeFrom, ct, prior);
        }
        catch
        {
            // A failed run leaves no adapters hooked on the U-Net (its checkpoints hold them).
            _lora?.Dispose();
            _lora = null;
            throw;
        }
        finally
        {
            _loraDropout?.Dispose();
            _loraDropout = null;
        }
    }

    private void RunStages(string prompt, int categoryTokenId, int imageCount, Func<int, SeededRandom, Tensor> augment, string fingerprint,
        string? resumeFrom, CancellationToken ct, PriorPreservationData? prior)
    {
        if (_plan.UsesPriorPreservation && prior is null) throw new ArgumentNullException(nameof(prior), "The plan uses prior preservation but no class images were given.");
        if (_options.CheckpointDirectory is { } checkpointRoot) PrepareCheckpointFolder(checkpointRoot, fingerprint);
        using var streams = new RandomStreams(_options.Seed);
        using var scheduler = DdpmScheduler.ForTraining(_components.SchedulerConfig);
        using var latents = CacheLatents(imageCount, augment, streams);
        // The class batches draw from streams of their own, so prior preservation leaves the instance batches unchanged.
        using var priorStreams = _plan.UsesPriorPreservation ? new RandomStreams(PriorSeed(_options.Seed)) : null;
        _priorStreams = priorStreams;
        using var classLatents = priorStreams is null ? null : new LatentSource(_components.Vae, prior!.Count, (i, _) => prior.Sample(i), 1, fresh: false, priorStreams);
        ct.ThrowIfCancellationRequested();

        var promptTokens = EncodeTrainingPrompt(prompt, categoryTokenId);
        var resume = resumeFrom is null ? ResumePoint.Start : Resume(resumeFrom, fingerprint, streams, priorStreams);
        // The remaining-time estimate covers this process's steps only.
        var clock = Stopwatch.StartNew();
        using var memory = PlanMemory(latents);
        using var objective = new PersonalizationObjective(_components, _concept, scheduler);
        using var classHidden = EncodeClassPrompt(objective, prior, _components.Device);
        using var run = new StageRun(fingerprint, ct, streams, scheduler, latents, priorStreams, classLatents, promptTokens, objective, classHidden, clock, resume.GlobalStep);
        var stages = _plan.EnabledStages;
        for (int si = resume.StageIndex; si < stages.Count; si++)
        {
            bool resumed = si == resume.StageIndex;
            TrainStage(run, si, resumed ? resume.StepInStage : 0, resumed ? resume : null, memory);
        }
        Finish(memory, clock);
    }

    /// <summary>What every stage and step of one run shares.</summary>
    private sealed class StageRun(string fingerprint, CancellationToken ct, RandomStreams streams, DdpmScheduler scheduler, LatentSource latents,
        RandomStreams? priorStreams, LatentSource? classLatents, (Tensor Ids, Tensor ConceptPosition, Tensor CategoryPosition) prompt,
        PersonalizationObjective objective, Tensor? classHidden, Stopwatch clock, int globalStep) : IDisposable
    {
        public string Fingerprint { get; } = fingerprint;
        public CancellationToken Ct { get; } = ct;
        public RandomStreams Streams { get; } = streams;
        public DdpmScheduler Scheduler { get; } = scheduler;
        public LatentSource Latents { get; } = latents;
        public RandomStreams? PriorStreams { get; } = priorStreams;
        public LatentSource? ClassLatents { get; } = classLatents;
        public Tensor Ids { get; } = prompt.Ids;
        public Tensor ConceptPosition { get; } = prompt.ConceptPosition;
        public Tensor CategoryPosition { get; } = prompt.CategoryPosition;
        public PersonalizationObjective Objective { get; } = objective;
        public Tensor? ClassHidden { get; } = classHidden;
        public Stopwatch Clock { get; } = clock;

        /// <summary>Optimizer steps over all stages so far.</summary>
        public int GlobalStep { get; set; } = globalStep;

        /// <summary>The global step this process started at (a resumed run's checkpoint).</summary>
        public int StepsAtStart { get; } = globalStep;

        /// <summary>The training prompt's conditioning for the stages after the embedding stage, computed once: the embedding
        /// and the text encoder are both fixed from then on.</summary>
        public Tensor? FixedHidden { get; set; }

        public void Dispose() => FixedHidden?.Dispose();
    }

    /// <summary>Encodes (and caches, per the data options) the concept images' latents.</summary>
    private LatentSource CacheLatents(int imageCount, Func<int, SeededRandom, Tensor> augment, RandomStreams streams)
    {
        // One VAE encode per variant before the first step: at 512 px on a CPU that is minutes (80 encodes took 13 min for SD 2.1
        // on the busy 2-core machine), so say so before it starts.
        if (!_options.Data.FreshAugmentationEveryStep) PipelineLog.CachingLatents(_logger, imageCount * _options.Data.VariantsPerImage, imageCount);
        var clock = Stopwatch.StartNew();
        var latents = new LatentSource(_components.Vae, imageCount, augment, _options.Data.VariantsPerImage, _options.Data.FreshAugmentationEveryStep, streams);
        PipelineLog.LatentsCached(_logger, latents.CachedCount, clock.Elapsed);
        return latents;
    }

    /// <summary>The training prompt's ids and where [V] and the category word sit in it.</summary>
    private (Tensor Ids, Tensor ConceptPosition, Tensor CategoryPosition) EncodeTrainingPrompt(string prompt, int categoryTokenId)
    {
        var ids = _components.Tokenizer.EncodeToTensor([prompt], _components.Device);
        var conceptPosition = TokenPositions.FindFirst(ids, _concept.TokenIds[0]);
        var categoryPosition = TokenPositions.FindCategory(ids, conceptPosition, categoryTokenId);
        return (ids, conceptPosition, categoryPosition);
    }

    /// <summary>The memory plan of the run; the VAE may go only when nothing renders during training.</summary>
    private TrainingMemoryPlan PlanMemory(LatentSource latents)
    {
        long vaeParameters = _components.Vae.parameters().Sum(p => p.numel());
        var memory = new TrainingMemoryPlan(_components, _options,
            releaseVae: _options.ReleaseVaeDuringTraining && latents.CachedCount > 0 && !RendersDuring(_plan.EnabledStages));
        if (memory.VaeReleased) PipelineLog.WeightsReleased(_logger, "VAE", vaeParameters);
        if (memory.ChannelsLastWeights > 0) PipelineLog.ChannelsLastApplied(_logger, memory.ChannelsLastWeights);
        return memory;
    }

    /// <summary>Whether validation images are rendered during any of <paramref name="stages"/> (a render needs the VAE and
    /// the text encoder).</summary>
    private bool RendersDuring(IEnumerable<TrainingStage> stages) => _render is not null && _options.ValidationPrompts.Count > 0
        && (_options.ValidationInterval is not null || stages.Any(_options.ValidationAfterStages.Contains));

    /// <summary>Whether the text encoder may go from stage <paramref name="stageIndex"/> to the end of the run, once that stage's
    /// conditioning is computed: no stage from there on trains the embedding (such a stage differentiates through the encoder;
    /// the trainer creates no text-encoder adapters), and nothing renders. The class prompt's conditioning is computed
    /// before the first stage.</summary>
    private bool MayReleaseTextEncoder(int stageIndex)
    {
        var rest = _plan.EnabledStages.Skip(stageIndex).ToArray();
        return _options.ReleaseTextEncoderDuringTraining && !rest.Any(_plan.TrainsEmbedding) && !RendersDuring(rest);
    }

    /// <summary>Trains stage <paramref name="stageIndex"/> of the enabled stages from <paramref name="firstStep"/>.</summary>
    private void TrainStage(StageRun run, int stageIndex, int firstStep, ResumePoint? resume, TrainingMemoryPlan memory)
    {
        var stage = _plan.EnabledStages[stageIndex];
        var settings = _plan[stage];
        if (firstStep >= settings.Steps) return;
        var trainable = PrepareStage(stageIndex, memory);
        using var optimizer = CreateOptimizer(settings, trainable);
        if (resume?.Tensors is not null && firstStep > 0) RestoreOptimizer(optimizer, resume, firstStep);
        SetTrainingModes(stage, settings);
        // A stage that keeps the embedding fixed conditions every step on the same prompt encoding, computed once and shared
        // with the following such stages; one that trains the embedding encodes in every step and makes that encoding stale.
        Tensor? fixedHidden = null;
        if (_plan.TrainsEmbedding(stage))
        {
            run.FixedHidden?.Dispose();
            run.FixedHidden = null;
        }
        else
        {
            if (run.FixedHidden is null)
            {
                using var _ = no_grad();
                run.FixedHidden = run.Objective.EncodePrompt(run.Ids).DetachFromDisposeScope();
            }
            fixedHidden = run.FixedHidden;
            if (MayReleaseTextEncoder(stageIndex))
            {
                long parameters = _components.TextEncoder.parameters().Sum(p => p.numel());
                if (memory.ReleaseTextEncoder()) PipelineLog.WeightsReleased(_logger, "text encoder", parameters);
            }
        }
        try
        {
            for (int step = firstStep + 1; step <= settings.Steps; step++)
            {
                // Cancellation lands between steps: the last completed step is checkpointed before stopping.
                if (run.Ct.IsCancellationRequested) throw Cancelled(stage, step - 1, run.GlobalStep, run.Fingerprint, optimizer, run.Streams, run.Ct);
                var losses = TrainStep(run, stage, settings, step, fixedHidden);
                StageOptimizer.ClipGradients(trainable.Select(p => p.Parameter), settings);
                optimizer.Step();
                optimizer.ZeroGrad();
                run.GlobalStep++;
                AfterStep(run, stage, settings, step, losses, optimizer);
            }
        }
        finally
        {
            foreach (var (_, p) in trainable) p.requires_grad = false;
        }
    }

    /// <summary>Sets the stage up: frees or casts memory, moves between full and LoRA fine-tuning, and selects (and logs)
    /// the trainable parameters.</summary>
    private List<(string Name, Parameter Parameter)> PrepareStage(int stageIndex, TrainingMemoryPlan memory)
    {
        var stages = _plan.EnabledStages;
        var stage = stages[stageIndex];
        var settings = _plan[stage];
        memory.BeforeStage(stage);
        bool loraStage = settings.Lora is not null;
        // A full fine-tuning stage after a LoRA stage continues from the adapters' result, written into the weights.
        if (!loraStage && _lora is not null) MergeLora(keep: false);
        if (loraStage && _lora is null) CreateLora(stages, stageIndex);
        var trainable = SelectTrainable(stage);
        // Casting frozen layers may replace their parameter objects; select again so the optimizer holds the live ones.
        if (memory.AfterSelection(stage, loraStage, KeptByEarlierStages(stages, stageIndex))) trainable = SelectTrainable(stage);
        PipelineLog.StageStarted(_logger, (int)stage, StageName(stage), settings.Steps, settings.LearningRate, settings.BatchSize,
            trainable.Count, trainable.Sum(p => p.Parameter.NumberOfElements));
        return trainable;
    }

    private AdamWOptimizer CreateOptimizer(StageOptions settings, List<(string Name, Parameter Parameter)> trainable) =>
        StageOptimizer.Create(trainable, settings, _options);

    /// <summary>Train mode (dropout) for the U-Net in the stages that change it, and for the adapters of a LoRA stage.</summary>
    private void SetTrainingModes(TrainingStage stage, StageOptions settings)
    {
        if (stage == TrainingStage.CrossAttention || stage == TrainingStage.UNet) _components.UNet.train();
        else _components.UNet.eval();
        _lora?.train(settings.Lora is not null);
    }

    /// <summary>Forward and backward over the step's micro-batches (gradients accumulate); returns the mean losses.</summary>
    private (double Mse, double Attention, double Prior) TrainStep(StageRun run, TrainingStage stage, StageOptions settings, int step, Tensor? fixedHidden)
    {
        var device = _components.Device;
        double mseSum = 0, attentionSum = 0, priorSum = 0;
        int accumulation = settings.GradientAccumulationSteps;
        for (int micro = 0; micro < accumulation; micro++)
        {
            using var scope = NewDisposeScope();
            int b = settings.BatchSize;
            var x0 = run.Latents.Sample(b, run.Streams, device);
            var noise = randn(x0.shape, dtype: float32, generator: run.Streams.Noise).to(device);
            var timesteps = run.Scheduler.SampleTimesteps(b, run.Streams.Timesteps, CPU).to(device);
            var batch = new TrainingBatch(x0, noise, timesteps, run.Ids.expand(b, -1), run.ConceptPosition.expand(b), run.CategoryPosition.expand(b));
            var hidden = fixedHidden?.expand(b, -1, -1);
            PriorPreservationBatch? classBatch = null;
            if (run.ClassLatents is not null && settings.PriorLossWeight > 0)
            {
                var classX0 = run.ClassLatents.Sample(b, run.PriorStreams!, device);
                var classNoise = randn(classX0.shape, dtype: float32, generator: run.PriorStreams!.Noise).to(device);
                var classTimesteps = run.Scheduler.SampleTimesteps(b, run.PriorStreams.Timesteps, CPU).to(device);
                classBatch = new PriorPreservationBatch(classX0, classNoise, classTimesteps, run.ClassHidden!.expand(b, -1, -1), settings.PriorLossWeight);
            }
            var loss = run.Objective.Compute(batch, settings.RegularizationWeights, hidden, classBatch);
            if (!double.IsFinite(loss.Mse) || !double.IsFinite(loss.Attention) || !double.IsFinite(loss.PriorMse))
                throw NonFiniteValuesException.Training((int)stage, step, loss.Mse, loss.Attention, _lastCheckpoint);
            (accumulation == 1 ? loss.Loss : loss.Loss.div(Kept(accumulation))).backward();
            mseSum += loss.Mse;
            attentionSum += loss.Attention;
            priorSum += loss.PriorMse;
        }
        return (mseSum / accumulation, attentionSum / accumulation, priorSum / accumulation);
    }

    /// <summary>Records the step's loss, writes a checkpoint and renders validation images when due, and reports progress.</summary>
    private void AfterStep(StageRun run, TrainingStage stage, StageOptions settings, int step, (double Mse, double Attention, double Prior) losses,
        AdamWOptimizer optimizer)
    {
        var (mse, attention, priorLoss) = losses;
        double total = mse + attention + settings.PriorLossWeight * priorLoss;
        _lossHistory.Add(total);
        PipelineLog.StepCompleted(_logger, (int)stage, step, settings.Steps, total, mse, attention);

        string? checkpoint = null;
        bool stageEnd = step == settings.Steps;
        if (_options.CheckpointDirectory is not null && (stageEnd || (_plan.CheckpointInterval is { } every && step % every == 0)))
        {
            checkpoint = WriteCheckpoint(stage, step, run.GlobalStep, run.Fingerprint, optimizer, run.Streams);
        }
        IReadOnlyList<GeneratedImage>? validation = null;
        bool validate = (_options.ValidationInterval is { } vi && run.GlobalStep % vi == 0) || (stageEnd && _options.ValidationAfterStages.Contains(stage));
        if (_render is not null && _options.ValidationPrompts.Count > 0 && validate)
        {
            validation = _options.ValidationPrompts.SelectMany(p => _render(p, _options.ValidationGeneration, run.Ct)).ToArray();
        }
        var elapsed = run.Clock.Elapsed;
        int totalSteps = _plan.TotalSteps;
        int done = run.GlobalStep - run.StepsAtStart;
        TimeSpan? eta = done > 0 ? TimeSpan.FromTicks(elapsed.Ticks / done * (totalSteps - run.GlobalStep)) : null;
        _progress?.Report(new TrainingProgress(stage, step, settings.Steps, run.GlobalStep, totalSteps,
            total, mse, attention, settings.LearningRate, elapsed, eta)
        { CheckpointPath = checkpoint, ValidationImages = validation, PriorLoss = priorLoss, StageEndEmbedding = stageEnd ? EmbeddingRows() : null });
    }

    /// <summary>A CPU copy of the concept's embedding rows, row by row.</summary>
    private float[] EmbeddingRows()
    {
        using var scope = NewDisposeScope();
        return _concept.Weight.detach().to(float32).cpu().contiguous().data<float>().ToArray();
    }

    /// <summary>Eval mode, exact float32 weights back, the adapters merged (kept when the concept is saved as embedding + LoRA).</summary>
    private void Finish(TrainingMemoryPlan memory, Stopwatch clock)
    {
        _components.UNet.eval();
        // The adapters are merged into exact float32 weights: the memory plan reloads what it held in half precision first.
        memory.Dispose();
        if (_lora is not null) MergeLora(keep: _plan.TrainsLoraOnly);
        PipelineLog.TrainingFinished(_logger, clock.Elapsed);
    }

    /// <summary>The parameters a stage trains, by checkpoint name; everything else is frozen.</summary>
    internal List<(string Name, Parameter Parameter)> SelectTrainable(TrainingStage stage)
    {
        bool embedding = _plan.TrainsEmbedding(stage);
        _concept.Weight.requires_grad = embedding;
        if (!embedding) _concept.Weight.grad = null;
        List<(string, Parameter)> trainable = embedding ? [(EmbeddingStateName, _concept.Weight)] : [];
        if (stage != TrainingStage.Embedding && _plan[stage].Lora is not null)
        {
            trainable.AddRange(SelectAdapters(stage));
            return trainable;
        }
        // Stage 1 freezes every U-Net weight: the rule selects none.
        var unet = StageParameters.Freeze(stage, _components.UNet.named_parameters().Select(p => (p.name, p.parameter)));
        if (_lora is not null) FreezeAdapters(_ => false);
        trainable.AddRange(unet.Select(p => ("unet." + p.Name, p.Parameter)));
        return trainable;
    }

    /// <summary>The concept embedding's name in checkpoints and in the optimizer's state.</summary>
    private const string EmbeddingStateName = "concept.embedding";

    /// <summary>For a LoRA stage holding frozen weights in half precision: the parameters an earlier full fine-tuning stage
    /// trained must keep their float32 values (the memory plan restores cast weights from the base model).</summary>
    private Func<string, bool>? KeptByEarlierStages(IReadOnlyList<TrainingStage> stages, int index)
    {
        if (_plan[stages[index]].Lora is null) return null;
        var earlier = stages.Take(index).Where(s => s != TrainingStage.Embedding && _plan[s].Lora is null).ToArray();
        return earlier.Length == 0 ? null : name => earlier.Any(s => StageParameters.IsTrained(s, name));
    }

    internal static string StageName(TrainingStage stage) => stage.DisplayName();

    private const string PriorStatePrefix = "prior.";

    private static long PriorSeed(long seed) => unchecked(seed * 0x2545F4914F6CDD1DL + 0x5851F42D4C957F2DL);

    /// <summary>The class prompt's conditioning, computed once: the text encoder is frozen and the prompt has no [V].</summary>
    private Tensor? EncodeClassPrompt(PersonalizationObjective objective, PriorPreservationData? prior, Device device)
    {
        if (!_plan.UsesPriorPreservation || prior is null) return null;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = _components.Tokenizer.EncodeToTensor([prior.Prompt], device);
        return objective.EncodePrompt(ids).detach().DetachFromDisposeScope();
    }
}
