namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// What a processor selector knows about one attention layer of a model.
/// </summary>
/// <param name="Path">Module path, e.g. <c>down_blocks.0.attentions.0.transformer_blocks.0.attn2</c>.</param>
/// <param name="IsCrossAttention">True for layers that attend to the text encoder states (<c>attn2</c>).</param>
/// <param name="Heads">Number of heads.</param>
/// <param name="HeadDim">Channels per head.</param>
/// <param name="QueryDim">Width of the query tokens (the layer's channel count).</param>
/// <param name="KeyDim">Width of the key/value inputs (the cross-attention dimension, or <paramref name="QueryDim"/>).</param>
/// <param name="DownscaleFactor">Spatial size of the layer relative to the model input: the layer sees
/// (H / factor) x (W / factor) tokens for an H x W latent (1 = full resolution; 1 outside a U-Net).</param>
internal sealed record AttentionLayerInfo(string Path, bool IsCrossAttention, int Heads, int HeadDim, int QueryDim, int KeyDim, int DownscaleFactor);
