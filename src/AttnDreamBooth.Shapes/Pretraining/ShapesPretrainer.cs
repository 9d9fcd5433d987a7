using System.Diagnostics;
using AttnDreamBooth.IO;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// Pretrains a Shapes model from scratch with the library's public blocks, as a user's own training program would:
/// first the VAE on renders (L1 + L2 reconstruction, a small KL term), then — with the VAE frozen and its latents
/// scaled to unit variance — the text encoder and U-Net together on the epsilon objective (min-SNR weighting, 10 %
/// empty captions for classifier-free guidance). AdamW, linear warm-up and cosine decay per phase, gradient
/// clipping. Data order, noise, timesteps and caption dropout are pure functions of the seed and the step, and
/// every checkpoint holds all optimizer and random-stream state, so a killed run resumes exactly where it stopped.
/// </summary>
public sealed class ShapesPretrainer
{
    /// <summary>How much longer a U-Net step is than a VAE step (measured with the default recipe, batch 32 vs 16), used
    /// only for the ETA before the U-Net phase has run.</summary>
    public const double UNetToVaeStepCostRatio = 1.0;

    // Disjoint index ranges of the source, so each phase and the scaling-factor estimate see their own images.
    private const long UNetIndexBase = 1L << 36;
    private const long ScalingIndexBase = 1L << 44;
    private const int ScalingImages = 256;

    private readonly PretrainingRecipe _recipe;
    private readonly IPretrainingSource _source;
    private readonly PretrainingOptions _options;

    /// <summary>Prepares a run of <paramref name="recipe"/> on <paramref name="source"/>.</summary>
    /// <exception cref="ArgumentException">The recipe or options are invalid, or the source's image size is not the architecture's.</exception>
    public ShapesPretrainer(PretrainingRecipe recipe, IPretrainingSource source, PretrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        recipe.Validate();
        options.Validate();
        if (options.VaeFolder is not null && recipe.VaeSteps != 0)
            throw new ArgumentException($"PretrainingOptions.VaeFolder replaces the VAE phase; the recipe must have VaeSteps = 0 (it has {recipe.VaeSteps}).", nameof(options));
        if (recipe.VaeDecoderOnly && options.InitialModelFolder is null && !options.Resume)
            throw new ArgumentException("The recipe's vae_decoder_only fine-tunes the decoder of an existing VAE against its frozen encoder; " +
                "name the model to start from (PretrainingOptions.InitialModelFolder, --init-from).", nameof(options));
        if (source.ImageSize != recipe.Architecture.ImageSize)
            throw new ArgumentException($"The source renders {source.ImageSize}×{source.ImageSize} images; the architecture expects {recipe.Architecture.ImageSize}.", nameof(source));
        if (recipe.ObjectLossWeight > 0 && !source.ProvidesObjectMasks)
            throw new ArgumentException($"The recipe's object_loss_weight ({recipe.ObjectLossWeight}) weights the loss by object masks, which the source " +
                $"({source.GetType().Name}) does not provide (IPretrainingSource.ProvidesObjectMasks); use object_loss_weight 0 or a source with masks.", nameof(source));
        if (recipe.VaeNovelAppearanceShare > 0 && !source.ProvidesNovelAppearances)
            throw new ArgumentException($"The recipe's vae_novel_appearance_share ({recipe.VaeNovelAppearanceShare}) draws images with novel appearances, which the source " +
                $"({source.GetType().Name}) does not provide (IPretrainingSource.ProvidesNovelAppearances); use 0 or a source that does.", nameof(source));
        _recipe = recipe;
        _source = source;
        _options = options;
    }

    /// <summary>Runs (or resumes) the whole recipe on a dedicated thread; reports after every step.</summary>
    /// <exception cref="OperationCanceledException">Cancelled; a checkpoint of the last completed step was written first.</exception>
    /// <exception cref="ModelConfigException">Resuming, but there is no checkpoint or it belongs to another recipe.</exception>
    public Task<PretrainingResult> RunAsync(IProgress<PretrainingProgress>? progress = null, CancellationToken ct = default) =>
        Task.Factory.StartNew(() => Run(progress, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private PretrainingResult Run(IProgress<PretrainingProgress>? progress, CancellationToken ct) => TensorRoots.Run(() => RunRooted(progress, ct));

    private PretrainingResult RunRooted(IProgress<PretrainingProgress>? progress, CancellationToken ct)
    {
        if (_options.IntraOpThreads is not int wanted) return RunWithThreads(progress, ct);
        int threads = get_num_threads();
        set_num_threads(wanted);
        try
        {
            return RunWithThreads(progress, ct);
        }
        finally
        {
            set_num_threads(threads);
        }
    }

    private PretrainingResult RunWithThreads(IProgress<PretrainingProgress>? progress, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var tokenizer = ClipTokenizer.FromFolder(_options.TokenizerFolder);
        if (tokenizer.VocabularySize > _recipe.Architecture.TextEncoder.VocabSize)
            throw new ArgumentException($"The tokenizer in '{_options.TokenizerFolder}' has {tokenizer.VocabularySize} tokens; the text encoder only {_recipe.Architecture.TextEncoder.VocabSize}.");
        using var networks = new ShapesNetworks(_recipe.Architecture, _recipe.Seed);
        using var streams = new PretrainingRandom(_recipe.Seed);
        var state = new PretrainingCheckpointState { RecipeFingerprint = _recipe.Fingerprint(), RecipeJson = _recipe.ToJson() };
        Dictionary<string, Tensor>? resumeTensors = null;
        double? scaling = null;
        // A run continued from a model folder carries its text encoder and U-Net through the VAE phase's checkpoints too.
        bool carriesDenoiser = false;
        if (_options.Resume)
        {
            var (folder, stored) = PretrainingCheckpoint.ReadState(_options.CheckpointDirectory);
            if (stored.RecipeFingerprint != state.RecipeFingerprint)
                throw new ModelConfigException(Path.Combine(folder, PretrainingCheckpoint.JsonFile), "recipe_fingerprint",
                    "belongs to a run with a different recipe (architecture, seed, steps or hyper-parameters); start a new run in another folder or pass the same settings");
            state = stored;
            resumeTensors = PretrainingCheckpoint.ReadTensors(folder);
            carriesDenoiser = resumeTensors.Keys.Any(k => k.StartsWith(ShapesNetworks.UNetPrefix, StringComparison.Ordinal));
            networks.Load(resumeTensors, includeVae: true, includeDenoiser: state.Phase == PretrainingPhase.UNet || carriesDenoiser);
            streams.LoadState(resumeTensors);
            if (_recipe.VaeDecoderOnly && state.Phase == PretrainingPhase.Vae) scaling = state.ScalingFactor;
        }
        else if (_options.VaeFolder is { } vaeFolder)
        {
            LoadPretrainedVae(networks, vaeFolder);
        }
        else if (_options.InitialModelFolder is { } modelFolder)
        {
            double folderScaling = LoadInitialModel(networks, modelFolder);
            carriesDenoiser = true;
            // A VAE phase changes the VAE, so its latent scale is measured again at the phase boundary — unless it only
            // trains the decoder: the latents are then the folder's, and so is their scale (kept in every checkpoint).
            if (_recipe.VaeSteps == 0 || _recipe.VaeDecoderOnly) scaling = folderScaling;
            if (_recipe.VaeDecoderOnly) state = state with { ScalingFactor = folderScaling };
        }
        try
        {
            var session = new Session(this, networks, streams, tokenizer, progress, ct) { KnownScalingFactor = scaling, CarriesDenoiser = carriesDenoiser };
            if (state.Phase == PretrainingPhase.Vae) state = session.TrainVae(state, resumeTensors);
            state = session.TrainUNet(state, state.StepInPhase > 0 ? resumeTensors : null);
            return new PretrainingResult(session.LastCheckpoint ?? PretrainingCheckpoint.Latest(_options.CheckpointDirectory)!, state);
        }
        finally
        {
            if (resumeTensors is not null) foreach (var t in resumeTensors.Values) t.Dispose();
        }
    }

    private static void LoadPretrainedVae(ShapesNetworks networks, string folder)
    {
        using var vae = Models.Vae.AutoencoderKL.FromFolder(folder);
        CopyInto(networks, [(vae, ShapesNetworks.VaePrefix)], includeDenoiser: false,
            $"The VAE in '{folder}' does not fit the recipe's VAE architecture", nameof(PretrainingOptions.VaeFolder));
    }

    /// <summary>Copies a model folder's three networks into <paramref name="networks"/>; returns its VAE's scaling factor.</summary>
    private static double LoadInitialModel(ShapesNetworks networks, string folder)
    {
        var owners = new List<nn.Module>();
        try
        {
            var vae = Models.Vae.AutoencoderKL.FromFolder(Path.Combine(folder, "vae"));
            owners.Add(vae);
            owners.Add(Models.Clip.ClipTextModel.FromFolder(Path.Combine(folder, "text_encoder")));
            owners.Add(Models.UNet.UNet2DConditionModel.FromFolder(Path.Combine(folder, "unet")));
            CopyInto(networks, [(owners[0], ShapesNetworks.VaePrefix), (owners[1], ShapesNetworks.TextEncoderPrefix), (owners[2], ShapesNetworks.UNetPrefix)],
                includeDenoiser: true, $"The model in '{folder}' does not fit the recipe's architecture", nameof(PretrainingOptions.InitialModelFolder));
            double scaling = vae.ScalingFactor;
            if (!(scaling > 0) || !double.IsFinite(scaling))
                throw new ModelConfigException(Path.Combine(folder, "vae", "config.json"), "scaling_factor", $"is {scaling}; a model to continue from needs its measured positive latent scale");
            return scaling;
        }
        finally
        {
            foreach (var m in owners) m.Dispose();
        }
    }

    /// <summary>Copies loaded modules' weights into <paramref name="networks"/> under their prefixes (the VAE always
    /// included); an architecture mismatch becomes an <see cref="ArgumentException"/> on <paramref name="option"/>.</summary>
    private static void CopyInto(ShapesNetworks networks, (nn.Module Module, string Prefix)[] parts, bool includeDenoiser, string mismatch, string option)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (module, prefix) in parts)
            foreach (var (name, tensor) in module.state_dict()) tensors[prefix + name] = tensor;
        try
        {
            networks.Load(tensors, includeVae: true, includeDenoiser);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"{mismatch}: {ex.Message}", option, ex);
        }
    }

    /// <summary>The state of one process's run: the networks, streams and timing.</summary>
    private sealed class Session(ShapesPretrainer owner, ShapesNetworks networks, PretrainingRandom streams, ClipTokenizer tokenizer,
        IProgress<PretrainingProgress>? progress, CancellationToken ct)
    {
        private readonly PretrainingRecipe _recipe = owner._recipe;
        private readonly PretrainingOptions _options = owner._options;
        private readonly Stopwatch _sinceCheckpoint = Stopwatch.StartNew();
        private double _vaeSecondsPerStep;

        public string? LastCheckpoint { get; private set; }

        /// <summary>The latent scale of a VAE that comes with a model to continue from (measured afresh when null).</summary>
        public double? KnownScalingFactor { get; init; }

        /// <summary>The text encoder and U-Net hold trained weights before the U-Net phase, so every checkpoint keeps them.</summary>
        public bool CarriesDenoiser { get; init; }

        public PretrainingCheckpointState TrainVae(PretrainingCheckpointState state, IReadOnlyDictionary<string, Tensor>? resume)
        {
            var vae = networks.Vae;
            vae.train();
            bool decoderOnly = _recipe.VaeDecoderOnly;
            var trained = ShapesNetworks.NamedParameters(vae, ShapesNetworks.VaePrefix).Where(p => !decoderOnly || IsDecoderParameter(p.Name)).ToList();
            foreach (var p in vae.parameters()) p.requires_grad = false;
            foreach (var (_, p) in trained) p.requires_grad = true;
            using var optimizer = new PhaseOptimizer(_recipe.Optimizer, (ShapesNetworks.VaePrefix, trained, 1.0));
            if (resume is not null) optimizer.LoadState(OptimizerState(resume), state.StepInPhase);
            var losses = state.VaeLosses.ToList();
            int steps = _recipe.VaeSteps;
            int batch = _recipe.VaeBatchSize;
            int pixels = _recipe.Architecture.ImageSize * _recipe.Architecture.ImageSize * 3;
            var clock = Stopwatch.StartNew();
            int sessionSteps = 0;
            double seconds = state.VaeSeconds;
            for (int step = state.StepInPhase; step < steps; step++)
            {
                if (ct.IsCancellationRequested) Cancel(state with { VaeLosses = losses, VaeSeconds = seconds + clock.Elapsed.TotalSeconds }, optimizer);
                double lr = _recipe.LearningRateAt(_recipe.VaeLearningRate, step, steps);
                optimizer.LearningRate = lr;
                double loss;
                using (var scope = NewDisposeScope())
                {
                    var x = ImageBatch.ToTensor(VaeImages((long)step * batch, batch));
                    var sampleNoise = randn([batch, _recipe.Architecture.Vae.LatentChannels, _recipe.Architecture.ImageSize / _recipe.Architecture.Vae.DownsampleFactor,
                        _recipe.Architecture.ImageSize / _recipe.Architecture.Vae.DownsampleFactor], generator: streams.LatentSample);
                    loss = Backward(optimizer, () =>
                    {
                        using var posterior = EncodeForVaeStep(vae, x, decoderOnly);
                        var reconstruction = vae.Decode(posterior.SampleWithNoise(sampleNoise));
                        var difference = reconstruction.sub(x);
                        var rec = difference.abs().mean().add(difference.pow(Kept(2)).mean(), One);
                        if (decoderOnly) return rec;
                        var kl = posterior.Mean.pow(Kept(2)).add(posterior.Var, One).sub(Kept(1)).sub(posterior.LogVar).sum([1, 2, 3]).mean().mul(Kept(0.5 / pixels));
                        return rec.add(kl.mul(Kept(_recipe.VaeKlWeight)), One);
                    });
                    Clip(optimizer);
                    optimizer.Step();
                }
                EnsureFinite(loss, PretrainingPhase.Vae, step);
                losses.Add(loss);
                sessionSteps++;
                _vaeSecondsPerStep = clock.Elapsed.TotalSeconds / sessionSteps;
                state = state with { Phase = PretrainingPhase.Vae, StepInPhase = step + 1, VaeLosses = losses, VaeSeconds = seconds + clock.Elapsed.TotalSeconds };
                var eta = TimeSpan.FromSeconds(_vaeSecondsPerStep * (steps - step - 1 + _recipe.UNetSteps * UNetToVaeStepCostRatio));
                string? checkpoint = null;
                if (step + 1 < steps && ShouldCheckpoint(step + 1))
                {
                    checkpoint = Save(state, optimizer, includeDenoiser: CarriesDenoiser);
                }
                progress?.Report(new PretrainingProgress(PretrainingPhase.Vae, step + 1, steps, step + 1, _recipe.TotalSteps, loss, lr, _vaeSecondsPerStep, eta) { CheckpointPath = checkpoint });
            }
            foreach (var p in vae.parameters()) p.requires_grad = false;
            vae.eval();
            // The phase boundary: measure the latent scale once and start the U-Net phase from a checkpoint.
            double scaling = KnownScalingFactor ?? MeasureScalingFactor();
            state = state with { Phase = PretrainingPhase.UNet, StepInPhase = 0, ScalingFactor = scaling, VaeLosses = losses, VaeSeconds = seconds + clock.Elapsed.TotalSeconds };
            Save(state, optimizer: null, includeDenoiser: true);
            return state;
        }

        /// <summary>The encoder's posterior of a VAE step; without a graph when only the decoder learns.</summary>
        private static Models.Vae.DiagonalGaussianDistribution EncodeForVaeStep(Models.Vae.AutoencoderKL vae, Tensor x, bool decoderOnly)
        {
            if (!decoderOnly) return vae.Encode(x);
            using var _ = no_grad();
            return vae.Encode(x);
        }

        /// <summary>Whether a VAE parameter (named under <see cref="ShapesNetworks.VaePrefix"/>) is the decoder's side of the latent.</summary>
        private static bool IsDecoderParameter(string name)
        {
            string local = name[ShapesNetworks.VaePrefix.Length..];
            return local.StartsWith("decoder.", StringComparison.Ordinal) || local.StartsWith("post_quant_conv.", StringComparison.Ordinal);
        }

        public PretrainingCheckpointState TrainUNet(PretrainingCheckpointState state, IReadOnlyDictionary<string, Tensor>? resume)
        {
            var vae = networks.Vae;
            vae.eval();
            foreach (var p in vae.parameters()) p.requires_grad = false;
            var textEncoder = networks.TextEncoder;
            var unet = networks.UNet;
            textEncoder.train();
            unet.train();
            foreach (var p in textEncoder.parameters()) p.requires_grad = true;
            foreach (var p in unet.parameters()) p.requires_grad = true;
            var textEncoderParameters = ShapesNetworks.NamedParameters(textEncoder, ShapesNetworks.TextEncoderPrefix).ToList();
            var unetParameters = ShapesNetworks.NamedParameters(unet, ShapesNetworks.UNetPrefix).ToList();
            var named = textEncoderParameters.Concat(unetParameters).ToList();
            PhaseOptimizer NewOptimizer() => new(_recipe.Optimizer,
                (ShapesNetworks.TextEncoderPrefix, textEncoderParameters, _recipe.TextEncoderLearningRateScale ?? 1.0),
                (ShapesNetworks.UNetPrefix, unetParameters, 1.0));
            int restart = _recipe.UNetRestartStep;
            var optimizer = NewOptimizer();
            using var ownsOptimizer = new OptimizerHolder(optimizer);
            // After the restart the checkpointed moments are the restarted optimizer's, and so is its step count.
            if (resume is not null) optimizer.LoadState(OptimizerState(resume), restart > 0 && state.StepInPhase > restart ? state.StepInPhase - restart : state.StepInPhase);
            using var average = _recipe.UNetEmaDecay > 0 ? new WeightAverage(named, _recipe.UNetEmaDecay, resume) : null;
            using var scheduler = DiffusionSamplers.ForTraining(SchedulerConfig.Parse(DiffusersConfigFiles.Scheduler(_recipe.Scheduler)));
            using var alphasCumprod = tensor(scheduler.AlphasCumprod.ToArray());
            var losses = state.UNetLosses.ToList();
            var mses = state.UNetMse.ToList();
            int steps = _recipe.UNetSteps;
            int batch = _recipe.UNetBatchSize;
            double scaling = state.ScalingFactor;
            var clock = Stopwatch.StartNew();
            int sessionSteps = 0;
            double seconds = state.UNetSeconds;
            for (int step = state.StepInPhase; step < steps; step++)
            {
                if (ct.IsCancellationRequested) Cancel(state with { UNetLosses = losses, UNetMse = mses, UNetSeconds = seconds + clock.Elapsed.TotalSeconds }, optimizer, average);
                if (restart > 0 && step == restart)
                {
                    optimizer = ownsOptimizer.Replace(NewOptimizer());
                }
                double lr = _recipe.UNetLearningRateAt(step);
                optimizer.LearningRate = lr;
                double loss, mse;
                using (var scope = NewDisposeScope())
                {
                    var examples = Examples(UNetIndexBase + (long)step * batch, batch);
                    var keep = rand([batch], generator: streams.DataOrder);
                    var captions = examples.Select((e, i) => keep[i].item<float>() < _recipe.CaptionDropout ? "" : e.Caption).ToArray();
                    Tensor latents;
                    using (no_grad())
                    {
                        using var posterior = vae.Encode(ImageBatch.ToTensor(examples.Select(e => e.Image).ToArray()));
                        latents = posterior.Sample(streams.LatentSample).mul(Kept(scaling));
                    }
                    var noise = randn(latents.shape, generator: streams.Noise);
                    var timesteps = scheduler.SampleTimesteps(batch, streams.Timesteps);
                    var noisy = scheduler.AddNoise(latents, noise, timesteps);
                    var target = scheduler.GetTrainingTarget(latents, noise, timesteps);
                    var ids = tokenizer.EncodeToTensor(captions);
                    var weights = ones([batch]);
                    if (_recipe.MinSnrGamma > 0)
                    {
                        var a = alphasCumprod.index_select(0, timesteps);
                        var snr = a.div(a.neg().add(Kept(1), One));
                        var denominator = _recipe.Scheduler.PredictionType == PredictionType.VPrediction ? snr.add(Kept(1), One) : snr;
                        weights = snr.clamp_max(Kept(_recipe.MinSnrGamma)).div(denominator);
                    }
                    var coverage = _recipe.ObjectLossWeight > 0
                        ? ObjectLossWeighting.CoverageTensor(examples, _recipe.Architecture.ImageSize, _recipe.Architecture.Vae.DownsampleFactor, _recipe.ObjectLossDilation)
                        : null;
                    double unweighted = double.NaN;
                    loss = Backward(optimizer, () =>
                    {
                        var hidden = textEncoder.Forward(ids).LastHiddenState;
                        var prediction = unet.call(noisy, timesteps, hidden);
                        var perSample = prediction.sub(target).pow(Kept(2)).mean([1, 2, 3]);
                        unweighted = perSample.mean().item<float>();
                        if (coverage is not null) perSample = ObjectLossWeighting.PerImageLoss(prediction, target, coverage, _recipe.ObjectLossWeight);
                        return perSample.mul(weights).mean();
                    });
                    mse = unweighted;
                    Clip(optimizer);
                    optimizer.Step();
                    average?.Update(step);
                }
                EnsureFinite(loss, PretrainingPhase.UNet, step);
                losses.Add(loss);
                mses.Add(mse);
                sessionSteps++;
                double perStep = clock.Elapsed.TotalSeconds / sessionSteps;
                state = state with { Phase = PretrainingPhase.UNet, StepInPhase = step + 1, UNetLosses = losses, UNetMse = mses, UNetSeconds = seconds + clock.Elapsed.TotalSeconds };
                string? checkpoint = null;
                if (step + 1 == steps || ShouldCheckpoint(step + 1))
                {
                    checkpoint = Save(state, optimizer, includeDenoiser: true, average);
                }
                progress?.Report(new PretrainingProgress(PretrainingPhase.UNet, step + 1, steps, _recipe.VaeSteps + step + 1, _recipe.TotalSteps, loss, lr, perStep,
                    TimeSpan.FromSeconds(perStep * (steps - step - 1))) { CheckpointPath = checkpoint });
            }
            if (steps == 0 || LastCheckpoint is null || state.StepInPhase != steps) LastCheckpoint = Save(state, optimizer, includeDenoiser: true, average);
            return state;
        }

        /// <summary>Disposes whichever optimizer the U-Net phase holds last (a restart replaces the first).</summary>
        private sealed class OptimizerHolder(PhaseOptimizer optimizer) : IDisposable
        {
            private PhaseOptimizer _current = optimizer;

            public PhaseOptimizer Replace(PhaseOptimizer next)
            {
                _current.Dispose();
                _current = next;
                return next;
            }

            public void Dispose() => _current.Dispose();
        }

        /// <summary>Clears the gradients, runs <paramref name="forward"/> and back-propagates its loss (unless it is not finite).</summary>
        private static double Backward(PhaseOptimizer optimizer, Func<Tensor> forward)
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            var total = forward();
            double loss = total.item<float>();
            if (double.IsFinite(loss)) total.backward();
            return loss;
        }

        private List<RgbImage> Images(long start, int count) => Examples(start, count).Select(e => e.Image).ToList();

        /// <summary>A VAE batch: its first round(share × count) images in novel appearances, the rest captioned renders.</summary>
        private List<RgbImage> VaeImages(long start, int count)
        {
            int novel = (int)Math.Round(_recipe.VaeNovelAppearanceShare * count, MidpointRounding.AwayFromZero);
            var images = new List<RgbImage>(count);
            for (int i = 0; i < novel; i++)
            {
                var image = owner._source.GetWithNovelAppearance(start + i) ?? throw new InvalidOperationException($"The pretraining source returned no novel-appearance image for index {start + i}.");
                if (image.Width != _recipe.Architecture.ImageSize || image.Height != _recipe.Architecture.ImageSize)
                    throw new InvalidOperationException($"The pretraining source returned a {image.Width}×{image.Height} novel-appearance image for index {start + i}; expected {_recipe.Architecture.ImageSize}².");
                images.Add(image);
            }
            images.AddRange(Images(start + novel, count - novel));
            return images;
        }

        private PretrainingExample[] Examples(long start, int count)
        {
            var examples = new PretrainingExample[count];
            for (int i = 0; i < count; i++)
            {
                var e = owner._source.Get(start + i) ?? throw new InvalidOperationException($"The pretraining source returned null for index {start + i}.");
                if (e.Image.Width != _recipe.Architecture.ImageSize || e.Image.Height != _recipe.Architecture.ImageSize)
                    throw new InvalidOperationException($"The pretraining source returned a {e.Image.Width}×{e.Image.Height} image for index {start + i}; expected {_recipe.Architecture.ImageSize}².");
                examples[i] = e;
            }
            return examples;
        }

        private double MeasureScalingFactor()
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var means = new List<Tensor>();
            for (int start = 0; start < ScalingImages; start += 32)
            {
                using var posterior = networks.Vae.Encode(ImageBatch.ToTensor(Images(ScalingIndexBase + start, Math.Min(32, ScalingImages - start))));
                means.Add(posterior.Mean.clone());
            }
            double std = cat(means, 0).std().item<float>();
            if (!(std > 0) || !double.IsFinite(std)) throw new PretrainingDivergedException($"The VAE's latents have standard deviation {std}; the VAE phase failed.");
            return 1.0 / std;
        }

        private void Clip(PhaseOptimizer optimizer)
        {
            if (_recipe.MaxGradNorm > 0)
            {
                // Reading .grad makes a handle on each gradient: dispose them now, not when the garbage collector runs.
                using var scope = NewDisposeScope();
                nn.utils.clip_grad_norm_(optimizer.Parameters.Where(p => p.grad is not null), _recipe.MaxGradNorm);
            }
        }

        private bool ShouldCheckpoint(int completedInPhase) =>
            (_options.CheckpointEverySteps > 0 && completedInPhase % _options.CheckpointEverySteps == 0) || _sinceCheckpoint.Elapsed >= _options.CheckpointInterval;

        private string Save(PretrainingCheckpointState state, PhaseOptimizer? optimizer, bool includeDenoiser, WeightAverage? average = null)
        {
            // The moments' views and the random states are released when the file is written.
            using var scope = NewDisposeScope();
            var tensors = networks.StateTensors(includeVae: true, includeDenoiser: includeDenoiser);
            if (average is not null)
            {
                foreach (var (name, t) in average.Tensors()) tensors[name] = t;
            }
            if (optimizer is not null)
            {
                foreach (var (name, t) in optimizer.StateViews()) tensors["optimizer." + name] = t;
            }
            foreach (var (name, t) in streams.SaveState()) tensors[name] = t;
            LastCheckpoint = PretrainingCheckpoint.Write(_options.CheckpointDirectory, state, tensors, _options.KeepCheckpoints);
            _sinceCheckpoint.Restart();
            return LastCheckpoint;
        }

        [System.Diagnostics.CodeAnalysis.DoesNotReturn]
        private void Cancel(PretrainingCheckpointState state, PhaseOptimizer optimizer, WeightAverage? average = null)
        {
            Save(state, optimizer, includeDenoiser: state.Phase == PretrainingPhase.UNet || CarriesDenoiser, average);
            ct.ThrowIfCancellationRequested();
            throw new OperationCanceledException(ct);
        }

        private static Dictionary<string, Tensor> OptimizerState(IReadOnlyDictionary<string, Tensor> tensors) =>
            tensors.Where(p => p.Key.StartsWith("optimizer.", StringComparison.Ordinal))
                .ToDictionary(p => p.Key["optimizer.".Length..], p => p.Value, StringComparer.Ordinal);

        private static void EnsureFinite(double loss, PretrainingPhase phase, int step)
        {
            if (!double.IsFinite(loss)) throw new PretrainingDivergedException($"The {phase} phase's loss became {loss} at step {step + 1}; lower the learning rate or resume from an earlier checkpoint.");
        }
    }
}
