using AttnDreamBooth.IO;
using AttnDreamBooth.StableDiffusion;
using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.Personalization;

public sealed partial class PersonalizedModel
{
    /// <summary>The folder, inside a saved concept, of the VAE whose decoder was adapted (diffusers layout, so
    /// <c>AutoencoderKL.from_pretrained(concept + "/vae")</c> loads it too).</summary>
    public const string VaeFolder = "vae";

    private const int VaeFormatVersion = 2;

    // The resolution the photos were adapted at (the options may leave it to the model), recorded when saving.
    private int _decoderResolution;

    private const string DecoderAdvice = "Lower DecoderAdaptationOptions.BatchSize or the image resolution.";

    /// <summary>The settings the VAE decoder was adapted with (<see cref="AdaptDecoderAsync"/>), also for a loaded concept
    /// saved after an adaptation; null when the concept draws through the base model's decoder.</summary>
    public DecoderAdaptationOptions? DecoderAdaptation { get; private set; }

    /// <summary>
    /// Fine-tunes the pipeline's VAE decoder on <paramref name="concept"/>'s photos, so generated images draw details of the
    /// concept (fine patterns, exact colours) that the base model's decoder renders as the nearest thing it knows
    /// (<see cref="DecoderAdaptationOptions"/>). The encoder is not changed. Call it after training, on the pipeline
    /// that holds this concept; saving then writes the VAE next to the concept (<see cref="VaeFolder"/>), and loading puts
    /// it back. The decoder draws everything the model generates, so images without the concept change too: measure
    /// what matters to you with and without it. All-or-nothing: cancelled or failed, the decoder is as it was.
    /// </summary>
    /// <param name="concept">The photos (usually the concept the model was trained on).</param>
    /// <param name="options">The settings; null uses the defaults.</param>
    /// <param name="progress">Receives a report after every step.</param>
    /// <param name="ct">Cancels between steps; the decoder's weights are then put back.</param>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="InvalidOperationException">This model is not the concept its pipeline holds, its decoder was already
    /// adapted, the VAE is not in float32, or the loss diverged.</exception>
    /// <exception cref="Imaging.InvalidImageException">A photo is unusable (every problem is listed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled; nothing changed.</exception>
    public Task AdaptDecoderAsync(Concept concept, DecoderAdaptationOptions? options = null, IProgress<DecoderAdaptationProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(concept);
        options ??= new DecoderAdaptationOptions();
        options.Validate();
        return Pipeline.RunExclusive(() => TensorAllocation.Guard("adapting the VAE decoder", DecoderAdvice, () =>
        {
            AdaptDecoder(concept, options, progress, ct);
            return true;
        }), ct);
    }

    private void AdaptDecoder(Concept concept, DecoderAdaptationOptions options, IProgress<DecoderAdaptationProgress>? progress, CancellationToken ct)
    {
        if (!ReferenceEquals(Pipeline.Concept, this))
            throw new InvalidOperationException($"The concept '{Token}' is not the one its pipeline holds; adapt the decoder of the pipeline's current concept.");
        if (DecoderAdaptation is not null)
            throw new InvalidOperationException($"The VAE decoder of '{Token}' is already adapted; adapting it again would start from the adapted weights, not the base model's.");
        var c = Pipeline.Components;
        var imageOptions = options.Images with { Augmentation = ImageAugmentationOptions.None };
        if (imageOptions.Resolution <= 0) imageOptions = imageOptions with { Resolution = c.DefaultResolution };
        var images = ConceptImageSet.Load(concept, imageOptions, Pipeline.ResourceLimits);
        ct.ThrowIfCancellationRequested();
        using (var pixels = images.GetBatch([.. Enumerable.Range(0, images.Count)], random: null))
            VaeDecoderAdaptation.Run(c.Vae, pixels, options, Token, Pipeline.LoggerFactory.CreateLogger<PersonalizedModel>(), progress, ct);
        DecoderAdaptation = options;
        _decoderResolution = imageOptions.Resolution;
    }

    /// <summary>Writes a component the concept changed as a diffusers folder named as the component (config from the base
    /// model, every weight), so the folder loads on its own.</summary>
    private static void SaveComponent(StableDiffusionComponents c, string conceptTemp, string component, IReadOnlyDictionary<string, TorchSharp.torch.Tensor> state)
    {
        string folder = Path.Combine(conceptTemp, component);
        Directory.CreateDirectory(folder);
        File.Copy(c.Folder.ConfigPath(component), Path.Combine(folder, "config.json"));
        SafetensorsWriter.Write(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), state, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>The saved VAE of a concept whose decoder was adapted, validated against the pipeline's VAE (config, every
    /// key, shapes, finite values); null for a concept without one. Nothing is loaded yet.</summary>
    private static StateDictSource? OpenVae(string folder, string metadataPath, PersonalizedModelMetadata metadata, StableDiffusionComponents c,
        StateDictLoadOptions loadOptions)
    {
        if (metadata.Vae is not { } name) return null;
        if (name.Length == 0 || Path.GetFileName(name) != name)
            throw new ModelConfigException(metadataPath, "vae", $"'{name}' must be a folder name inside the concept folder");
        string vaeFolder = Path.Combine(folder, name);
        if (!Directory.Exists(vaeFolder)) throw new ModelConfigException(vaeFolder, null, "is missing: the concept's adapted VAE is required");
        ConceptComponentConfig.CheckVae(Path.Combine(vaeFolder, "config.json"), c.Folder.ConfigPath("vae"));
        var source = StateDictSource.OpenComponent(vaeFolder);
        try
        {
            StateDictLoader.Validate(c.Vae, source, loadOptions);
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }
}

/// <summary>The decoder adaptation's settings as a saved concept records them.</summary>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="LearningRate">Learning rate.</param>
/// <param name="BatchSize">Photos per step.</param>
/// <param name="Seed">Seed.</param>
/// <param name="Resolution">The photos' side in pixels.</param>
internal sealed record DecoderAdaptationRecord(int Steps, double LearningRate, int BatchSize, long Seed, int Resolution)
{
    public static DecoderAdaptationRecord Of(DecoderAdaptationOptions options, int resolution) =>
        new(options.Steps, options.LearningRate, options.BatchSize, options.Seed, resolution);

    public DecoderAdaptationOptions ToOptions() => new()
    {
        Steps = Steps,
        LearningRate = LearningRate,
        BatchSize = BatchSize,
        Seed = Seed,
        Images = new ConceptImageOptions { Resolution = Resolution, Augmentation = ImageAugmentationOptions.None },
    };
}
