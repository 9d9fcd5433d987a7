using System.Globalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// DreamBooth's prior-preservation loss: before training, the base model generates <see cref="NumClassImages"/> images
/// of the class prompt ("a photo of a dog"); every step of a stage whose <see cref="StageOptions.PriorLossWeight"/> is
/// above 0 then adds that weight × the diffusion loss on a batch of those class images (conditioned on the class
/// prompt) to the loss, so the fine-tuned model keeps generating ordinary members of the class. The images are cached
/// in <see cref="TrainingOptions.ClassImageDirectory"/> when it is set and reused while every setting here,
/// the class prompt, the base model and the resolution match.
/// </summary>
public sealed record PriorPreservationOptions
{
    /// <summary>The default class prompt, "a photo of a {category}".</summary>
    public const string DefaultClassPrompt = "a photo of a {category}";

    /// <summary>The largest <see cref="NumClassImages"/> accepted.</summary>
    public const int MaxClassImages = 100_000;

    /// <summary>The class prompt; <c>{category}</c> is replaced by the concept's category. No other braces.
    /// Default <see cref="DefaultClassPrompt"/>.</summary>
    public string ClassPrompt { get; init; } = DefaultClassPrompt;

    /// <summary>How many class images to generate, 1 to <see cref="MaxClassImages"/>. Default 100 (diffusers'
    /// <c>--num_class_images</c>; the DreamBooth paper generated about 1,000).</summary>
    public int NumClassImages { get; init; } = 100;

    /// <summary>Seed of the first class image; image i uses <c>Seed + i</c>. Default 0.</summary>
    public long Seed { get; init; }

    /// <summary>Images generated per batch, 1 to 64 (part of the cache identity: batch composition can change the last
    /// bits of an image). Default 4 (diffusers' <c>--sample_batch_size</c>).</summary>
    public int SampleBatchSize { get; init; } = 4;

    /// <summary>Denoising steps per class image, 1 to 1000. Default 50.</summary>
    public int InferenceSteps { get; init; } = 50;

    /// <summary>Classifier-free guidance scale of the class images. Default 7.5.</summary>
    public double GuidanceScale { get; init; } = 7.5;

    /// <summary>The sampler by name (see <see cref="GenerationOptions.Sampler"/>); null uses
    /// <see cref="GenerationOptions"/>' default, DPM-Solver++.</summary>
    public string? Sampler { get; init; }

    /// <summary>Negative prompt of the class images. Default empty.</summary>
    public string NegativePrompt { get; init; } = "";

    /// <summary>The class prompt for <paramref name="category"/>, e.g. "a photo of a dog".</summary>
    public string ExpandClassPrompt(string category)
    {
        ArgumentNullException.ThrowIfNull(category);
        return ClassPrompt.Replace("{category}", category.Trim(), StringComparison.Ordinal);
    }

    /// <summary>The generation settings of the batch of class images starting at image <paramref name="first"/>.</summary>
    internal GenerationOptions ToGenerationOptions(int first, int count, int resolution) => new()
    {
        Seed = Seed + first,
        BatchSize = count,
        Steps = InferenceSteps,
        GuidanceScale = GuidanceScale,
        Sampler = Sampler,
        NegativePrompt = NegativePrompt,
        Width = resolution,
        Height = resolution,
    };

    /// <summary>Throws <see cref="InvalidStagePlanException"/> (setting "PriorPreservation.…") naming the first invalid setting.</summary>
    public void Validate()
    {
        if (ClassPrompt is null) Fail(nameof(ClassPrompt), "Must not be null.");
        string rest = ClassPrompt!.Replace("{category}", "", StringComparison.Ordinal);
        if (rest.Contains('{') || rest.Contains('}'))
            Fail(nameof(ClassPrompt), $"'{ClassPrompt}' contains a brace outside {{category}}, the only placeholder.");
        if (string.IsNullOrWhiteSpace(rest) && !ClassPrompt.Contains("{category}", StringComparison.Ordinal))
            Fail(nameof(ClassPrompt), "Must not be empty.");
        if (NumClassImages < 1 || NumClassImages > MaxClassImages)
            Fail(nameof(NumClassImages), $"Must be between 1 and {MaxClassImages:N0}; got {NumClassImages}.");
        if (SampleBatchSize < 1 || SampleBatchSize > 64)
            Fail(nameof(SampleBatchSize), $"Must be between 1 and 64; got {SampleBatchSize}.");
        if (InferenceSteps < 1 || InferenceSteps > 1000)
            Fail(nameof(InferenceSteps), $"Must be between 1 and 1000; got {InferenceSteps}.");
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0)
            Fail(nameof(GuidanceScale), $"Must be a finite number ≥ 0; got {GuidanceScale.ToString("g", CultureInfo.InvariantCulture)}.");
        if (NegativePrompt is null) Fail(nameof(NegativePrompt), "Must not be null.");
        if (Sampler is not null)
        {
            try
            {
                DiffusionSamplers.Resolve(Sampler);
            }
            catch (SchedulerException e)
            {
                Fail(nameof(Sampler), e.Message);
            }
        }
    }

    private static void Fail(string setting, string problem) => throw new InvalidStagePlanException(null, "PriorPreservation." + setting, problem);
}
