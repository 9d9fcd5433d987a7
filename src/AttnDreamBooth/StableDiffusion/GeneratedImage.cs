using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>One generated image: RGB pixels plus, on request, cross-attention heatmaps per token.</summary>
public sealed class GeneratedImage
{
    /// <summary>Creates the result.</summary>
    public GeneratedImage(string prompt, long seed, RgbImage image, IReadOnlyDictionary<string, AttentionHeatmap> heatmaps)
    {
        Prompt = prompt;
        Seed = seed;
        Image = image;
        Heatmaps = heatmaps;
    }

    /// <summary>The prompt as sent to the text encoder (after <c>{}</c> expansion).</summary>
    public string Prompt { get; }

    /// <summary>The seed of this image's initial noise.</summary>
    public long Seed { get; }

    /// <summary>The pixels.</summary>
    public RgbImage Image { get; }

    /// <summary>Heatmaps by requested token (empty unless asked for).</summary>
    public IReadOnlyDictionary<string, AttentionHeatmap> Heatmaps { get; }

    /// <summary>PNG bytes of the image.</summary>
    public byte[] EncodePng() => Image.EncodePng();

    /// <summary>Writes the image as PNG atomically.</summary>
    public void SavePng(string path) => Image.SavePng(path);

    /// <summary>The heatmap of <paramref name="token"/> rendered as a coloured overlay on the image (PNG bytes).</summary>
    /// <exception cref="KeyNotFoundException">No heatmap was requested for that token.</exception>
    public byte[] EncodeHeatmapOverlayPng(string token, double opacity = 0.5)
    {
        if (!Heatmaps.TryGetValue(token, out var map)) throw new KeyNotFoundException($"No heatmap was recorded for token '{token}'; request it in GenerationOptions.HeatmapTokens.");
        return map.RenderOverlay(Image, opacity).EncodePng();
    }
}
