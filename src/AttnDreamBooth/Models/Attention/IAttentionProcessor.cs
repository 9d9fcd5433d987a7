using TorchSharp;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// The computation behind an <see cref="Attention"/> layer. The layer owns the weights (<c>to_q</c>, <c>to_k</c>,
/// <c>to_v</c>, <c>to_out.0</c>); a processor decides how to combine them. Processors are swapped per layer by module
/// path (see <c>UNet2DConditionModel.SetAttentionProcessor</c>); one instance may serve many layers, so an
/// implementation must not keep per-layer state in fields unless it keys it by <see cref="Attention.Path"/>.
/// </summary>
public interface IAttentionProcessor
{
    /// <summary>
    /// Computes the layer's output, <c>[B, N, query_dim]</c>, for query tokens <paramref name="hiddenStates"/>
    /// <c>[B, N, query_dim]</c> attending to <paramref name="encoderHiddenStates"/> <c>[B, M, cross_attention_dim]</c>
    /// (cross-attention) or to themselves (null).
    /// </summary>
    torch.Tensor Process(Attention attn, torch.Tensor hiddenStates, torch.Tensor? encoderHiddenStates, AttentionContext context);

    /// <summary>Called by the model once at the start of every forward pass, before any attention layer runs
    /// (e.g. to clear recorded maps). The default does nothing.</summary>
    void OnForwardStarting() { }
}
