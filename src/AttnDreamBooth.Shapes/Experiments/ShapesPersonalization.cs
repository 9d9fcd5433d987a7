using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Shapes.Pretraining;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>
/// How the method's published settings carry over to a Shapes model. The rule is fixed in advance, not tuned on
/// results: steps, batch sizes and regularization weights stay as published; the learning rates of the U-Net stages
/// are multiplied by <see cref="UNetLearningRateScale"/> (the Shapes model was pretrained at a 10× higher learning
/// rate than Stable Diffusion's 1e-4, so its weights sit on a 10× coarser scale of updates); the embedding stage keeps
/// its rate (the text encoder is initialised as CLIP's, and its trained rows have CLIP's scale: norms 0.2–0.6, e.g. "red"
/// 0.34, "star" 0.31, "dog" 0.21 in the shipped model).
/// </summary>
public static class ShapesPersonalization
{
    /// <summary>Stable Diffusion's pretraining learning rate, the reference of the published fine-tuning rates.</summary>
    public const double StableDiffusionLearningRate = 1e-4;

    /// <summary>The factor applied to the U-Net stages' learning rates.</summary>
    public static double UNetLearningRateScale { get; } = PretrainingRecipe.Default.UNetLearningRate / StableDiffusionLearningRate;

    /// <summary>The learning rate customary for LoRA adapters on Stable Diffusion (diffusers' DreamBooth-LoRA example, the
    /// CLI's <c>--lora-learning-rate</c> default).</summary>
    public const double StableDiffusionLoraLearningRate = 1e-4;

    /// <summary>The learning rate of LoRA stages on a Shapes model: <see cref="StableDiffusionLoraLearningRate"/> scaled by
    /// <see cref="UNetLearningRateScale"/>, the same rule as the full fine-tuning rates.</summary>
    public static double LoraLearningRate => StableDiffusionLoraLearningRate * UNetLearningRateScale;

    /// <summary><paramref name="published"/> carried over to a Shapes model (see the type's remarks).</summary>
    public static StagePlan Plan(StagePlan published)
    {
        ArgumentNullException.ThrowIfNull(published);
        return published with
        {
            Stage2 = published.Stage2 with { LearningRate = published.Stage2.LearningRate * UNetLearningRateScale },
            Stage3 = published.Stage3 with { LearningRate = published.Stage3.LearningRate * UNetLearningRateScale },
        };
    }

    /// <summary>
    /// Training options for rendered photos: 64-pixel images as they are (the world never rotates or crops its objects,
    /// so the photo augmentations of real subjects would teach the model shapes it never saw), one prepared variant per
    /// photo, no checkpoints.
    /// </summary>
    public static TrainingOptions TrainingOptions(long seed) => new()
    {
        Seed = seed,
        Data = new TrainingDataOptions
        {
            VariantsPerImage = 1,
            Images = new ConceptImageOptions { Resolution = 0, Augmentation = ImageAugmentationOptions.None },
        },
    };

    /// <summary>A decoder adaptation for Shapes concepts (<see cref="PersonalizedModel.AdaptDecoderAsync"/>): 100 steps at
    /// 1e-4 on all five photos at once, as photographed, chosen on the tuning concept (harlequin-star) by reconstructing its
    /// photos; what <c>shapes quality --adapt-decoder</c> measures. Neither the demo nor the experiments use it: on the
    /// demo it left the concept as absent as before (docs/shapes-world.md, "The decoder learns the concept").</summary>
    public static DecoderAdaptationOptions DecoderAdaptation { get; } = new()
    {
        Steps = 100,
        LearningRate = 1e-4,
        BatchSize = 5,
        Images = new ConceptImageOptions { Resolution = 0, Augmentation = ImageAugmentationOptions.None },
    };

    /// <summary>The sampler settings of every Shapes experiment: the library's default sampler (DPM-Solver++), 25 steps,
    /// guidance 7.5, maps on the 16×16 latent grid.</summary>
    public static GenerationOptions Generation { get; } = new() { Steps = 25, GuidanceScale = 7.5, HeatmapResolution = 16 };

    /// <summary>The sampler settings of the demo and the QuickStart: <see cref="Generation"/> at the model's own guidance
    /// (<see cref="ShapesModelQuality.DefaultGuidanceScale"/>, chosen for the shipped model on seen combinations) instead of
    /// the experiments' 7.5, at which the personalized model drew the demo concept's red and yellow as white
    /// (docs/shapes-world.md, "Guidance, on the U-Net side").</summary>
    public static GenerationOptions DemoGeneration { get; } = Generation with { GuidanceScale = ShapesModelQuality.DefaultGuidanceScale };
}
