using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// The cross-attention probabilities of one layer for the recorded tokens. <see cref="Probabilities"/> is
/// <c>[B, heads, Height * Width, K]</c> (pixel = y * Width + x; K = the recorded positions in selection order, or all
/// keys) and is part of the autograd graph when recorded with gradients enabled. The tensor belongs to the
/// <see cref="AttentionMapStore"/> and is disposed when the store is cleared: clone it to keep it longer.
/// </summary>
/// <param name="LayerPath">Module path of the attention layer.</param>
/// <param name="Height">Rows of the layer's latent grid.</param>
/// <param name="Width">Columns of the layer's latent grid.</param>
/// <param name="Probabilities">Softmax probabilities, <c>[B, heads, Height * Width, K]</c>.</param>
internal sealed record RecordedAttentionMap(string LayerPath, int Height, int Width, Tensor Probabilities)
{
    /// <summary>Which key positions the last axis holds (default: all).</summary>
    public AttentionTokenSelection Tokens { get; init; } = AttentionTokenSelection.All;

    /// <summary>Number of heads.</summary>
    public int Heads => (int)Probabilities.shape[1];

    /// <summary>Number of pixels (<c>Height * Width</c>).</summary>
    public int Pixels => Height * Width;

    /// <summary>The probabilities averaged over heads and laid out as images: <c>[B, K, Height, Width]</c>
    /// (for visualisation).</summary>
    public Tensor AsImages()
    {
        using var scope = NewDisposeScope();
        var mean = Probabilities.mean([1L]);
        return mean.permute(0, 2, 1).reshape(mean.shape[0], mean.shape[2], Height, Width).MoveToOuterDisposeScope();
    }
}
