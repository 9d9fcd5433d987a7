namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// What a single file does not say about the model it holds, and the documented rules that fill it in. Resolve with
/// <see cref="Resolve"/>: values set here win; then the config folder's scheduler / U-Net configs; then the family
/// defaults where they are unambiguous (every SD 1.x release predicts epsilon at 512 px). SD 2.x files come both as
/// v-prediction at 768 px (2.0, 2.1) and as epsilon at 512 px (the -base models), so for them the prediction type
/// must be given (here or by a scheduler config); an SD 2.x image size then follows from it unless given.
/// </summary>
internal sealed record SingleFileModelSettings
{
    /// <summary>The settings a caller gave in <paramref name="options"/>.</summary>
    public static SingleFileModelSettings From(SingleFileLoadOptions? options) =>
        new() { PredictionType = options?.PredictionType, ImageSize = options?.ImageSize };

    /// <summary>The diffusers prediction type name, <c>epsilon</c> or <c>v_prediction</c>.</summary>
    public string? PredictionType { get; init; }

    /// <summary>The native image size in pixels (512 for SD 1.x and 2.x-base, 768 for 2.x v-models).</summary>
    public int? ImageSize { get; init; }

    /// <summary>The prediction type names accepted.</summary>
    public static IReadOnlyList<string> PredictionTypes { get; } = ["epsilon", "v_prediction"];

    /// <summary>Fills in what is missing.</summary>
    /// <param name="family">The checkpoint's family.</param>
    /// <param name="configFolder">Optional diffusers folder of configs: its <c>scheduler/scheduler_config.json</c> gives the
    /// prediction type, its U-Net <c>sample_size</c> times the VAE factor gives the image size.</param>
    /// <exception cref="InvalidWeightsException">The settings stay ambiguous (SD 2.x without a prediction type).</exception>
    /// <exception cref="ArgumentException">An unknown prediction type or a non-positive size.</exception>
    public SingleFileModelSettings Resolve(StableDiffusionFamily family, string? configFolder = null)
    {
        string? prediction = PredictionType;
        int? size = ImageSize;
        if (configFolder is not null)
        {
            var folder = DiffusersFolder.Open(configFolder);
            if (prediction is null && folder.Index.Components.ContainsKey("scheduler"))
                prediction = ConfigReader.Load(folder.ConfigPath("scheduler")).GetString("prediction_type", "epsilon");
            if (size is null && folder.Index.Components.ContainsKey("unet") && folder.Index.Components.ContainsKey("vae"))
            {
                var unet = ConfigReader.Load(folder.ConfigPath("unet"));
                var vae = ConfigReader.Load(folder.ConfigPath("vae"));
                if (unet.Has("sample_size"))
                    size = unet.GetInt("sample_size") * (1 << (vae.GetIntArray("block_out_channels", [64]).Length - 1));
            }
        }
        if (prediction is null)
        {
            prediction = family == StableDiffusionFamily.Sd1
                ? "epsilon"
                : throw InvalidWeightsException.SingleFile("SD 2.x single file",
                    "the file does not say whether it predicts v (768 px models such as 2.0 / 2.1) or epsilon (512 px -base models); " +
                    "set SingleFileLoadOptions.PredictionType to \"v_prediction\" or \"epsilon\" (or give a config folder with a scheduler config)");
        }
        if (!PredictionTypes.Contains(prediction))
            throw new ArgumentException($"Prediction type '{prediction}' is not one of {string.Join(", ", PredictionTypes)}.", nameof(PredictionType));
        size ??= family == StableDiffusionFamily.Sd2 && prediction == "v_prediction" ? 768 : 512;
        if (size <= 0) throw new ArgumentException($"Image size {size} must be positive.", nameof(ImageSize));
        return new SingleFileModelSettings { PredictionType = prediction, ImageSize = size };
    }
}
