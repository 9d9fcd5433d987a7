using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// Everything that determines a pretraining run's result: the architecture, the seed, and the schedule of its two
/// phases (the VAE alone on renders, then the text encoder and U-Net together on the frozen VAE's latents). Two runs
/// with the same recipe produce the same weights; a checkpoint only resumes a run with the same recipe.
/// </summary>
public sealed record PretrainingRecipe
{
    /// <summary>The networks.</summary>
    public ShapesModelArchitecture Architecture { get; init; } = ShapesModelArchitecture.Default;

    /// <summary>Seed of every random stream (noise, timesteps, caption dropout, posterior samples) and of the weight initialisation.</summary>
    public long Seed { get; init; } = 20261204;

    /// <summary>Optimizer steps of the VAE phase.</summary>
    public int VaeSteps { get; init; } = 2000;

    /// <summary>Images per VAE step.</summary>
    public int VaeBatchSize { get; init; } = 16;

    /// <summary>Peak learning rate of the VAE phase.</summary>
    public double VaeLearningRate { get; init; } = 1e-3;

    /// <summary>Weight of the posterior's KL divergence to N(0, I), per latent element summed and divided by the pixel count
    /// (the reconstruction loss is a per-pixel mean), so it only keeps the latent scale bounded.</summary>
    public double VaeKlWeight { get; init; } = 1e-5;

    /// <summary>
    /// Share of each VAE batch drawn with novel appearances (<c>vae_novel_appearance_share</c>, 0–1; 0, the default, trains
    /// on the captioned renders alone): the first round(share × batch) images of a step come from
    /// <see cref="IPretrainingSource.GetWithNovelAppearance"/>, objects in random colours, outlines and emblems that no
    /// caption names. Why: a VAE trained on the world's nine colours alone encodes every other colour as one of them (a
    /// mint-green concept came back purple), so no personalization could show a concept's own look. The latent scale is
    /// still measured on captioned renders. Needs a source that provides them (<see cref="IPretrainingSource.ProvidesNovelAppearances"/>).
    /// </summary>
    /// <remarks>Left out of the JSON when 0, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double VaeNovelAppearanceShare { get; init; }

    /// <summary>
    /// Train only the VAE's decoder (<c>decoder</c> and <c>post_quant_conv</c>) in the VAE phase (<c>vae_decoder_only</c>),
    /// the encoder frozen. Why: the latents a denoiser was trained on stay exactly what they were, so a model's decoder can
    /// learn to draw more (novel appearances) without training its U-Net again; the latent scale is the starting VAE's.
    /// Needs a VAE to start from (<see cref="PretrainingOptions.InitialModelFolder"/>) and <see cref="VaeSteps"/> &gt; 0.
    /// The KL term only shapes the encoder, so the loss is the reconstruction alone.
    /// </summary>
    /// <remarks>Left out of the JSON when false, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool VaeDecoderOnly { get; init; }

    /// <summary>Optimizer steps of the joint text-encoder + U-Net phase.</summary>
    public int UNetSteps { get; init; } = 2000;

    /// <summary>Images per U-Net step.</summary>
    public int UNetBatchSize { get; init; } = 32;

    /// <summary>Peak learning rate of the U-Net phase (text encoder and U-Net alike).</summary>
    public double UNetLearningRate { get; init; } = 1e-3;

    /// <summary>
    /// The text encoder's learning rate in the U-Net phase as a multiple of the U-Net's
    /// (<c>text_encoder_learning_rate_scale</c>; absent, the default, trains both at the same rate): it follows the same
    /// warm-up, cosine and restart, scaled. Why: at a 1e-3 peak the text encoder of the one-command runs barely told the
    /// position words apart while the U-Net learnt shape best there; at 3e-4 the reverse (docs/shapes-world.md, "Where
    /// the one-command runs lose the position word").
    /// </summary>
    /// <remarks>Left out of the JSON when absent, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TextEncoderLearningRateScale { get; init; }

    /// <summary>Linear warm-up steps at the start of each phase; the rate then decays along a cosine to
    /// <see cref="FinalLearningRateFraction"/> of the peak.</summary>
    public int WarmupSteps { get; init; } = 100;

    /// <summary>The learning rate at the end of a phase, as a fraction of its peak.</summary>
    public double FinalLearningRateFraction { get; init; } = 0.1;

    /// <summary>Fraction of captions replaced by the empty prompt, so classifier-free guidance has an unconditional model.</summary>
    public double CaptionDropout { get; init; } = 0.1;

    /// <summary>Min-SNR loss weighting γ (Hang et al. 2023): each timestep's loss is weighted by min(SNR, γ) / SNR for epsilon
    /// prediction and min(SNR, γ) / (SNR + 1) for v-prediction (both give the x0 error the weight min(SNR, γ)); 0 disables it.</summary>
    public double MinSnrGamma { get; init; }

    /// <summary>
    /// Object-weighted U-Net loss (<c>object_loss_weight</c>; 0, the default, is the plain mean squared error). When it is
    /// λ &gt; 0, each latent element's squared error e is weighted by w = 1 + λ·m, where m ∈ [0, 1] is the union (per-pixel
    /// maximum) of the objects' coverage masks averaged over each latent pixel's <c>f × f</c> block of image pixels
    /// (f the VAE's downsampling factor) and broadcast over the latent channels; an image's loss is
    /// mean(w·e) / mean(w), so its scale stays that of the MSE, and min-SNR weighting and the batch mean apply to it as
    /// to the MSE. Objects cover a small part of the image and so of the plain loss; this shifts the loss towards them.
    /// Needs a source that provides object masks (<see cref="IPretrainingSource.ProvidesObjectMasks"/>). Opt-in; the shipped model was trained without it.
    /// </summary>
    /// <remarks>Left out of the JSON when 0, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double ObjectLossWeight { get; init; }

    /// <summary>
    /// Dilation of the object-weighted loss's coverage, in latent pixels (<c>object_loss_dilation</c>; 0, the default,
    /// weights the objects' own coverage). With r &gt; 0, m is replaced by its maximum over the (2r + 1)² latent pixels
    /// around each one before w = 1 + λ·m is formed, so the background just outside an outline is weighted like the object.
    /// Why: with m alone, a blob drawn where a star should be pays λ + 1 for the arm tips it misses but only 1 for the
    /// concavities it fills, so the weighting itself favours rounded outlines; the dilated weight charges both sides of the
    /// outline alike. Needs <see cref="ObjectLossWeight"/> &gt; 0.
    /// </summary>
    /// <remarks>Left out of the JSON when 0, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int ObjectLossDilation { get; init; }

    /// <summary>
    /// Decay of an exponential moving average of the text encoder's and U-Net's weights over the U-Net phase
    /// (<c>unet_ema_decay</c>; 0, the default, keeps none). Each step the average moves towards the weights by
    /// 1 − d, with d = min(decay, (1 + n) / (10 + n)) at update n (diffusers' <c>EMAModel</c> warm-up); the average is
    /// checkpointed and is what the model folder receives (<see cref="ShapesModelExporter.Export"/>). Why: the last
    /// weights of a run carry the noise of its last steps; diffusion models are usually sampled from such an average.
    /// </summary>
    /// <remarks>Left out of the JSON when 0, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double UNetEmaDecay { get; init; }

    /// <summary>
    /// A warm restart of the U-Net phase (<c>unet_restart_step</c>; 0, the default, has none): from this step on, the
    /// phase runs a fresh AdamW (zero moments, bias correction from its first step) and a new warm-up and cosine over
    /// the remaining steps, to the peak <see cref="UNetRestartLearningRate"/>; the steps before it follow the warm-up and
    /// cosine over those steps alone, to <see cref="UNetLearningRate"/>. Why: the shipped model's chain learnt shape at a
    /// 1e-3 peak and position only after restarting at 3e-4 with a fresh optimizer, and one uninterrupted run at either
    /// peak learnt only one of the two (docs/shapes-world.md, "The one-command recipe at a 3e-4 peak"). Run once inside
    /// one command (3,000 steps at 1e-3, then 2,000 at 3e-4) it did not do what the chain's restart did: position stayed
    /// one learnt word (docs/shapes-world.md, "One command with a warm restart"). The weight average, if any, runs on
    /// through the restart.
    /// </summary>
    /// <remarks>Left out of the JSON when 0, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int UNetRestartStep { get; init; }

    /// <summary>Peak learning rate after the restart at <see cref="UNetRestartStep"/> (<c>unet_restart_learning_rate</c>;
    /// required with a restart, 0 without one).</summary>
    /// <remarks>Left out of the JSON when 0, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public double UNetRestartLearningRate { get; init; }

    /// <summary>Gradient-norm clipping threshold (0 disables it).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>AdamW's betas, epsilon and weight decay.</summary>
    public AdamWOptions Optimizer { get; init; } = new() { WeightDecay = 1e-2 };

    /// <summary>The scheduler: SD's scaled-linear noise schedule over 1000 steps, v-prediction, optionally rescaled to
    /// zero terminal SNR. Written as a DPM-Solver++ config (DDIM when rescaled) so diffusers' pipeline and this
    /// library's generation default to the same sampler.</summary>
    public ShapesSchedulerSettings Scheduler { get; init; } = new();

    /// <summary>The recipe of the shipped model.</summary>
    public static PretrainingRecipe Default { get; } = new();

    /// <summary>Total optimizer steps of both phases.</summary>
    [JsonIgnore]
    public int TotalSteps => VaeSteps + UNetSteps;

    /// <summary>Throws <see cref="ArgumentException"/> (naming the property) when a value is unusable.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Architecture, nameof(Architecture));
        Architecture.Validate();
        static void Require(bool ok, string name, string problem)
        {
            if (!ok) throw new ArgumentException($"PretrainingRecipe.{name} {problem}.", name);
        }
        Require(VaeSteps >= 0, nameof(VaeSteps), "must not be negative");
        Require(UNetSteps >= 0, nameof(UNetSteps), "must not be negative");
        Require(VaeBatchSize is >= 1 and <= 1024, nameof(VaeBatchSize), "must be between 1 and 1024");
        Require(UNetBatchSize is >= 1 and <= 1024, nameof(UNetBatchSize), "must be between 1 and 1024");
        Require(VaeLearningRate > 0 && double.IsFinite(VaeLearningRate), nameof(VaeLearningRate), "must be positive and finite");
        Require(UNetLearningRate > 0 && double.IsFinite(UNetLearningRate), nameof(UNetLearningRate), "must be positive and finite");
        Require(VaeKlWeight >= 0 && double.IsFinite(VaeKlWeight), nameof(VaeKlWeight), "must be a finite number ≥ 0");
        Require(VaeNovelAppearanceShare is >= 0 and <= 1, nameof(VaeNovelAppearanceShare), "(vae_novel_appearance_share) must be between 0 and 1");
        Require(!VaeDecoderOnly || VaeSteps > 0, nameof(VaeDecoderOnly), "(vae_decoder_only) trains the VAE phase's decoder, so it needs vae_steps > 0");
        Require(TextEncoderLearningRateScale is null or (> 0 and <= 100), nameof(TextEncoderLearningRateScale),
            "(text_encoder_learning_rate_scale) must be positive and at most 100, or absent");
        Require(WarmupSteps >= 0, nameof(WarmupSteps), "must not be negative");
        Require(FinalLearningRateFraction is > 0 and <= 1, nameof(FinalLearningRateFraction), "must be in (0, 1]");
        Require(CaptionDropout is >= 0 and < 1, nameof(CaptionDropout), "must be in [0, 1)");
        Require(MinSnrGamma >= 0 && double.IsFinite(MinSnrGamma), nameof(MinSnrGamma), "must be a finite number ≥ 0");
        Require(ObjectLossWeight >= 0 && double.IsFinite(ObjectLossWeight), nameof(ObjectLossWeight), "(object_loss_weight) must be a finite number ≥ 0");
        Require(ObjectLossDilation is >= 0 and <= 4, nameof(ObjectLossDilation), "(object_loss_dilation) must be between 0 and 4 latent pixels");
        Require(ObjectLossDilation == 0 || ObjectLossWeight > 0, nameof(ObjectLossDilation), "(object_loss_dilation) dilates the object weighting, so it needs object_loss_weight > 0");
        Require(MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), nameof(MaxGradNorm), "must be a finite number ≥ 0");
        Require(UNetEmaDecay is >= 0 and < 1, nameof(UNetEmaDecay), "(unet_ema_decay) must be in [0, 1)");
        Require(UNetRestartStep == 0 || (UNetRestartStep > 0 && UNetRestartStep < UNetSteps), nameof(UNetRestartStep),
            $"(unet_restart_step) must be 0 (no restart) or a step inside the U-Net phase, between 1 and {Math.Max(0, UNetSteps - 1)}");
        Require(UNetRestartStep == 0 ? UNetRestartLearningRate == 0 : UNetRestartLearningRate > 0 && double.IsFinite(UNetRestartLearningRate),
            nameof(UNetRestartLearningRate), "(unet_restart_learning_rate) must be positive and finite with a restart, and 0 without one");
        ArgumentNullException.ThrowIfNull(Optimizer, nameof(Optimizer));
        ArgumentNullException.ThrowIfNull(Scheduler, nameof(Scheduler));
        Require(Scheduler.PredictionType is Schedulers.PredictionType.Epsilon or Schedulers.PredictionType.VPrediction, nameof(Scheduler),
            "must predict epsilon or v (PredictionType)");
        Require(!Scheduler.ZeroTerminalSnr || Scheduler.PredictionType == Schedulers.PredictionType.VPrediction, nameof(Scheduler),
            "(zero_terminal_snr) needs v-prediction: at zero signal the noise is the input and epsilon cannot be learnt from it");
    }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based) of a phase of <paramref name="steps"/> steps with peak <paramref name="peak"/>.</summary>
    public double LearningRateAt(double peak, int step, int steps)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return peak * (step + 1) / WarmupSteps;
        int decaySteps = Math.Max(1, steps - WarmupSteps);
        double progress = Math.Clamp((double)(step - WarmupSteps) / decaySteps, 0, 1);
        double floor = FinalLearningRateFraction;
        return peak * (floor + (1 - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based) of the U-Net phase, with its restart if it has one.</summary>
    public double UNetLearningRateAt(int step)
    {
        if (UNetRestartStep <= 0) return LearningRateAt(UNetLearningRate, step, UNetSteps);
        return step < UNetRestartStep
            ? LearningRateAt(UNetLearningRate, step, UNetRestartStep)
            : LearningRateAt(UNetRestartLearningRate, step - UNetRestartStep, UNetSteps - UNetRestartStep);
    }

    /// <summary>The recipe as indented JSON with snake_case names and enum values (written into checkpoints and the
    /// model's manifest).</summary>
    public string ToJson() => JsonFiles.Serialize(this);

    /// <summary>Reads a recipe written by <see cref="ToJson"/> or by an earlier version (<c>u_net_steps</c>,
    /// <c>"VPrediction"</c>); properties it does not name keep the default recipe's values.</summary>
    /// <exception cref="ArgumentException">The JSON is malformed, has unknown properties, or the recipe is invalid.</exception>
    public static PretrainingRecipe FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        PretrainingRecipe? recipe;
        try
        {
            recipe = JsonFiles.Deserialize<PretrainingRecipe>(json, StrictJsonOptions);
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"The recipe JSON is invalid: {ex.Message}", nameof(json), ex);
        }
        if (recipe is null) throw new ArgumentException("The recipe JSON is null.", nameof(json));
        recipe.Validate();
        return recipe;
    }

    /// <summary>SHA-256 of the recipe in a fixed spelling: identifies the run a checkpoint belongs to.</summary>
    public string Fingerprint() => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(this, FingerprintJsonOptions))));

    // The spelling the recipe files had when fingerprints were first recorded (.NET's snake_case, enum values as in C#).
    // Frozen apart from the files' spelling: a new spelling must not orphan the checkpoints of runs already under way.
    private static readonly JsonSerializerOptions FingerprintJsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    // A misspelt property in a hand-written recipe must not silently fall back to the default value.
    private static readonly JsonSerializerOptions StrictJsonOptions = new(JsonFiles.Options)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        MaxDepth = 16,
    };
}

/// <summary>The noise schedule and the default sampler written to <c>scheduler/scheduler_config.json</c>.</summary>
public sealed record ShapesSchedulerSettings
{
    /// <summary>Training timesteps.</summary>
    public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary>First beta of the scaled-linear schedule.</summary>
    public double BetaStart { get; init; } = 0.00085;

    /// <summary>Last beta of the scaled-linear schedule.</summary>
    public double BetaEnd { get; init; } = 0.012;

    /// <summary>What the U-Net predicts (written as <c>prediction_type</c>, so every sampler reads it back).</summary>
    public Schedulers.PredictionType PredictionType { get; init; } = Schedulers.PredictionType.VPrediction;

    /// <summary>
    /// Rescale the schedule so that its last timestep has no signal left (Lin et al. 2023, "Common diffusion noise
    /// schedules and sample steps are flawed"; <c>zero_terminal_snr</c>). SD's schedule keeps √ᾱ = 0.068 at t = 999, so
    /// a denoiser can read where the object is from the noisy latent itself instead of from the prompt, and a sampler
    /// that starts from pure noise then places it wherever the noise suggests. Training adds noise with the rescaled
    /// schedule and the model's sampler is written as DDIM with <c>rescale_betas_zero_snr</c> and trailing spacing (the
    /// sampler diffusers 0.24 offers for such a schedule). Needs v-prediction: epsilon is not defined at zero signal.
    /// </summary>
    /// <remarks>Left out of the JSON when false, so recipes without it keep their fingerprint.</remarks>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool ZeroTerminalSnr { get; init; }
}
