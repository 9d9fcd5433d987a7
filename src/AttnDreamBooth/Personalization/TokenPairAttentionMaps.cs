using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The cross-attention maps of one layer for the two tokens the regularization compares: the concept token [V]
/// and the category token that follows it. Each is [batch, heads, pixels] (softmax probabilities of that token's
/// column, one row per batch element, pixel = y * width + x).
/// </summary>
/// <param name="Concept">The [V] token's maps, [B, heads, pixels].</param>
/// <param name="Category">The category token's maps, same shape as <paramref name="Concept"/>.</param>
/// <param name="Layer">An optional name for error messages (e.g. the attention module path).</param>
internal sealed record TokenPairAttentionMaps(torch.Tensor Concept, torch.Tensor Category, string? Layer = null);
