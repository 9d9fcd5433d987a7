using AttnDreamBooth.Imaging;
using TorchSharp;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// A token's cross-attention, averaged over heads, layers and denoising steps, on a square grid and normalised
/// to [0, 1] — the kind of map the paper's figures show.
/// </summary>
public sealed class AttentionHeatmap
{
    /// <summary>Creates a heatmap from row-major values on a <paramref name="resolution"/>² grid.</summary>
    public AttentionHeatmap(string token, int resolution, float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != resolution * resolution) throw new ArgumentException($"Expected {resolution * resolution} values, got {values.Length}.", nameof(values));
        Token = token;
        Resolution = resolution;
        Values = values;
    }

    /// <summary>The token as requested.</summary>
    public string Token { get; }

    /// <summary>Grid side length.</summary>
    public int Resolution { get; }

    /// <summary>Row-major values in [0, 1].</summary>
    public float[] Values { get; }

    /// <summary>
    /// How much of the prompt's word attention this token takes, per layer resolution: for the cross-attention layers
    /// whose latent grid is <c>h</c> cells high (the key; largest first), the token's probability divided by the summed
    /// probability of all prompt words (the tokens between the start and end tokens, this one included), averaged over
    /// heads, pixels, those layers and the denoising steps, conditional branch only. In [0, 1]; over all words of a prompt
    /// the shares add up to 1. Empty when the token is not one of the prompt's words or the map was built elsewhere.
    /// </summary>
    public IReadOnlyDictionary<int, double> WordShares { get; init; } = new Dictionary<int, double>();

    /// <summary>
    /// The token's map per layer resolution: for the cross-attention layers whose latent grid is <c>h</c> cells high (the
    /// key, as in <see cref="WordShares"/>; largest first), those layers' maps averaged over heads, layers and denoising
    /// steps (conditional branch only), each resized to the same <see cref="Resolution"/>² grid and normalised to [0, 1]
    /// on its own like <see cref="Values"/>. <see cref="Values"/> averages all layers, so with a single cross-attention
    /// resolution the one entry equals it. The entries' own <see cref="WordShares"/> and <see cref="ByLayerResolution"/>
    /// are empty. Empty when the map was built elsewhere.
    /// </summary>
    public IReadOnlyDictionary<int, AttentionHeatmap> ByLayerResolution { get; init; } = new Dictionary<int, AttentionHeatmap>();

    /// <summary>The map as a [R, R] float32 tensor (caller disposes).</summary>
    public torch.Tensor ToTensor() => torch.tensor(Values).reshape(Resolution, Resolution);

    /// <summary>The map upsampled to the image, coloured with a jet palette and blended over it.</summary>
    public RgbImage RenderOverlay(RgbImage image, double opacity = 0.5)
    {
        using var map = ToTensor();
        return HeatmapRenderer.Overlay(image, map, opacity);
    }

    /// <summary>The map alone, coloured, at <paramref name="size"/>² pixels.</summary>
    public RgbImage Render(int size = 256)
    {
        using var map = ToTensor();
        return HeatmapRenderer.Render(map, size, size);
    }
}
