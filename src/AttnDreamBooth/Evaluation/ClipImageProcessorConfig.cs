using AttnDreamBooth.IO;

namespace AttnDreamBooth.Evaluation;

/// <summary>
/// A transformers <c>preprocessor_config.json</c> of <c>CLIPImageProcessor</c> (defaults = the OpenAI CLIP values).
/// Only Pillow's bicubic resampling (<c>resample</c> 3) is supported, because CLIP scores depend on it.
/// </summary>
internal sealed record ClipImageProcessorConfig
{
    /// <summary>Resize so the shorter side has this length (<c>size.shortest_edge</c>).</summary>
    public int ShortestEdge { get; init; } = 224;

    /// <summary>Centre-crop height (<c>crop_size.height</c>).</summary>
    public int CropHeight { get; init; } = 224;

    /// <summary>Centre-crop width (<c>crop_size.width</c>).</summary>
    public int CropWidth { get; init; } = 224;

    /// <summary>Whether to resize.</summary>
    public bool DoResize { get; init; } = true;

    /// <summary>Whether to centre-crop.</summary>
    public bool DoCenterCrop { get; init; } = true;

    /// <summary>Whether to multiply by <see cref="RescaleFactor"/>.</summary>
    public bool DoRescale { get; init; } = true;

    /// <summary>Whether to normalise with <see cref="ImageMean"/> / <see cref="ImageStd"/>.</summary>
    public bool DoNormalize { get; init; } = true;

    /// <summary>The rescale factor (1/255).</summary>
    public double RescaleFactor { get; init; } = 1.0 / 255.0;

    /// <summary>Per-channel mean (OpenAI CLIP).</summary>
    public IReadOnlyList<double> ImageMean { get; init; } = [0.48145466, 0.4578275, 0.40821073];

    /// <summary>Per-channel standard deviation (OpenAI CLIP).</summary>
    public IReadOnlyList<double> ImageStd { get; init; } = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>Reads a <c>preprocessor_config.json</c>.</summary>
    public static ClipImageProcessorConfig Load(string path) => FromReader(ConfigReader.Load(path));

    /// <summary>Reads a parsed preprocessor config.</summary>
    /// <exception cref="ModelConfigException">An unsupported resampler or malformed values.</exception>
    public static ClipImageProcessorConfig FromReader(ConfigReader config)
    {
        var defaults = new ClipImageProcessorConfig();
        int resample = config.GetInt("resample", 3);
        config.Require(resample == 3, "resample", $"resampler {resample} is not supported; CLIP preprocessing uses Pillow BICUBIC (3)");
        int shortest = defaults.ShortestEdge;
        if (config.Raw("size") is { ValueKind: System.Text.Json.JsonValueKind.Number }) shortest = config.GetInt("size");
        else if (config.Section("size") is { } size)
        {
            config.Require(size.Has("shortest_edge"), "size", "only {\"shortest_edge\": n} sizes are supported");
            shortest = size.GetInt("shortest_edge");
        }
        int cropH = defaults.CropHeight, cropW = defaults.CropWidth;
        if (config.Raw("crop_size") is { ValueKind: System.Text.Json.JsonValueKind.Number }) cropH = cropW = config.GetInt("crop_size");
        else if (config.Section("crop_size") is { } crop)
        {
            cropH = crop.GetInt("height");
            cropW = crop.GetInt("width");
        }
        var mean = ReadTriple(config, "image_mean", defaults.ImageMean);
        var std = ReadTriple(config, "image_std", defaults.ImageStd);
        config.Require(shortest > 0 && cropH > 0 && cropW > 0, "size", "sizes must be positive");
        var limits = ResourceLimits.Current;
        limits.RequireAtMost(config.FilePath, "size", shortest, limits.MaxSampleSize, nameof(limits.MaxSampleSize));
        limits.RequireAllAtMost(config.FilePath, "crop_size", [cropH, cropW], limits.MaxSampleSize, nameof(limits.MaxSampleSize));
        config.Require(std.All(s => s > 0), "image_std", "must be positive");
        return new ClipImageProcessorConfig
        {
            ShortestEdge = shortest,
            CropHeight = cropH,
            CropWidth = cropW,
            DoResize = config.GetBool("do_resize", true),
            DoCenterCrop = config.GetBool("do_center_crop", true),
            DoRescale = config.GetBool("do_rescale", true),
            DoNormalize = config.GetBool("do_normalize", true),
            RescaleFactor = config.GetDouble("rescale_factor", defaults.RescaleFactor),
            ImageMean = mean,
            ImageStd = std,
        };
    }

    private static double[] ReadTriple(ConfigReader config, string key, IReadOnlyList<double> fallback)
    {
        if (config.Raw(key) is not { } e) return fallback.ToArray();
        if (e.ValueKind == System.Text.Json.JsonValueKind.Number) return Enumerable.Repeat(e.GetDouble(), 3).ToArray();
        config.Require(e.ValueKind == System.Text.Json.JsonValueKind.Array && e.GetArrayLength() == 3, key, "expected three numbers (R, G, B)");
        return e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
    }
}
