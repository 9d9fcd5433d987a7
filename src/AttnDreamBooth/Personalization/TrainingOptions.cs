using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Personalization;

/// <summary>Run-level training settings that are not part of a <see cref="StagePlan"/>.</summary>
public sealed record TrainingOptions
{
    /// <summary>Seed of every random stream (noise, timesteps, augmentation, data order, latent sampling).</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Folder for resumable checkpoints; null disables them (the plan's interval is then ignored).</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>A checkpoint folder, or a folder of checkpoints (its newest is used), to continue from; null starts fresh.</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>Allow <see cref="CheckpointDirectory"/> to hold checkpoints of another run (default false: training refuses
    /// to start there, since this run's checkpoints could replace same-numbered ones of the other run). Pruning only
    /// ever deletes this run's checkpoints either way.</summary>
    public bool OverwriteOtherRuns { get; init; }

    /// <summary>Folder that caches the prior-preservation class images (PNG files and a <c>class_images.json</c> that
    /// records the prompt, base model, count, seed and generation settings); a later run with the same settings reuses
    /// them instead of generating again. Null (default) generates them in memory for every run. Only used when the plan
    /// has a stage with <see cref="StageOptions.PriorLossWeight"/> above 0.</summary>
    public string? ClassImageDirectory { get; init; }

    /// <summary>How many checkpoints to keep (newest first).</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>Image validation, augmentation and latent caching. The resolution is taken from the model when
    /// <see cref="ConceptImageOptions.Resolution"/> is left at 0.</summary>
    public TrainingDataOptions Data { get; init; } = new() { Images = new ConceptImageOptions { Resolution = 0 } };

    /// <summary>Recompute the U-Net blocks' activations during backward instead of keeping them (less memory, about
    /// one more forward pass of time). See docs/training-at-scale.md.</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>Hold frozen weights in half precision during training — the VAE throughout, the frozen U-Net layers in
    /// stages 1–2 — while trainable parameters, their optimizer state and the loss stay float32: <c>BFloat16</c>
    /// (recommended) or <c>Float16</c>; null keeps everything float32. The text encoder stays float32 (its output is
    /// differentiated into the concept embedding in stage 1). Exact float32 weights are reloaded from the base model
    /// before stage 3 and when training ends, so the result carries no rounding of frozen weights.</summary>
    public TorchSharp.torch.ScalarType? FrozenWeightsDType { get; init; }

    /// <summary>Store AdamW's moments in 8 bits, block-wise quantized as bitsandbytes' 8-bit Adam
    /// (<see cref="AttnDreamBooth.Training.AdamWStateFormat.BlockwiseInt8"/>): about 2.03 instead of 8 bytes per trained
    /// parameter (stage 3 of SD 2.1: 1.76 instead of 6.93 GB). The update is still computed in float32; a checkpoint
    /// resumes only with the setting that wrote it. See docs/training-at-scale.md for its measured effect on training.</summary>
    public bool EightBitOptimizerStates { get; init; }

    /// <summary>Lay the U-Net's convolution weights out channels-last (NHWC in memory) while training, and back when training
    /// ends: libtorch's CPU convolutions then take their channels-last kernels. On a 2-core CPU an SD 2.1 stage-3 step
    /// as the trainer runs it took 0.82× the time at 32×32 latents and gained nothing at 64×64 (docs/benchmarks.md).
    /// Values are unchanged; results differ from the standard layout by float summation order only. Not with <see cref="EightBitOptimizerStates"/>: the fused
    /// 8-bit update walks parameters in their standard order. A checkpoint resumes with either setting, bit-identically
    /// with the one that wrote it.</summary>
    public bool ChannelsLast { get; init; }

    /// <summary>With <see cref="EightBitOptimizerStates"/>: the smallest tensor whose moments are quantized (default
    /// 4,096, as bitsandbytes). Internal: experiments lower it to quantize every tensor of the tiny test models.</summary>
    internal long MinQuantizedOptimizerElements { get; init; } = AdamWOptimizer.DefaultMinQuantizedElements;

    /// <summary>Free the VAE's weights once the latent cache is built and reload them when training ends (ignored
    /// with fresh augmentation or validation renders, which need the VAE during training).</summary>
    public bool ReleaseVaeDuringTraining { get; init; }

    /// <summary>Free the text encoder's weights for the stages that no longer need it — from the first stage after the
    /// embedding stage (or the first stage, when the plan has none), once that stage's prompt conditioning is computed —
    /// and reload them, exactly and into the same module and parameter objects, when training ends (also when it fails or
    /// is cancelled). Validation renders need the encoder (as they need the VAE, <see cref="ReleaseVaeDuringTraining"/>): it is
    /// released only at the start of a stage after which nothing renders (never with a <see cref="ValidationInterval"/>),
    /// and a plan of stage 1 alone releases nothing. Saves the encoder's float32 weights (1.36 GB for SD 2.1).</summary>
    public bool ReleaseTextEncoderDuringTraining { get; init; }

    /// <summary>Prompts rendered every <see cref="ValidationInterval"/> steps and reported through progress
    /// (<c>{}</c> expands to "[V] category").</summary>
    public IReadOnlyList<string> ValidationPrompts { get; init; } = [];

    /// <summary>Steps between validation renders (null: none).</summary>
    public int? ValidationInterval { get; init; }

    /// <summary>Stages after whose last step the <see cref="ValidationPrompts"/> are also rendered (reported with that
    /// step's progress, whose <see cref="TrainingProgress.Step"/> then equals <see cref="TrainingProgress.StageSteps"/>),
    /// e.g. to see what each stage contributed. Stages the plan does not run are ignored. Empty (default): none.</summary>
    public IReadOnlyList<TrainingStage> ValidationAfterStages { get; init; } = [];

    /// <summary>Generation settings of validation renders.</summary>
    public GenerationOptions ValidationGeneration { get; init; } = new() { Steps = 25 };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for unusable values.</summary>
    public void Validate()
    {
        if (ClassImageDirectory is not null && string.IsNullOrWhiteSpace(ClassImageDirectory))
            throw new ArgumentException("ClassImageDirectory must be null or a folder path.", nameof(ClassImageDirectory));
        if (ChannelsLast && EightBitOptimizerStates)
            throw new ArgumentException("ChannelsLast cannot be combined with EightBitOptimizerStates: the fused 8-bit AdamW update needs the "
                + "parameters in their standard layout (it would fall back to a path about 20× slower). Turn one of them off.", nameof(ChannelsLast));
        if (KeepCheckpoints < 1) throw new ArgumentOutOfRangeException(nameof(KeepCheckpoints), KeepCheckpoints, "must be ≥ 1");
        ArgumentNullException.ThrowIfNull(Data);
        if (ValidationInterval is < 1) throw new ArgumentOutOfRangeException(nameof(ValidationInterval), ValidationInterval, "must be null or ≥ 1");
        ArgumentNullException.ThrowIfNull(ValidationPrompts);
        ArgumentNullException.ThrowIfNull(ValidationAfterStages);
        foreach (var stage in ValidationAfterStages)
        {
            if (!Enum.IsDefined(stage)) throw new ArgumentOutOfRangeException(nameof(ValidationAfterStages), stage, "not a training stage");
        }
        if (FrozenWeightsDType is { } d && d != TorchSharp.torch.ScalarType.BFloat16 && d != TorchSharp.torch.ScalarType.Float16)
            throw new ArgumentOutOfRangeException(nameof(FrozenWeightsDType), d, "must be BFloat16, Float16 or null");
        ValidationGeneration.Validate();
    }
}
