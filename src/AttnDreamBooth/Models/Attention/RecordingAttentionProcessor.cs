using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// A processor for cross-attention layers that returns the same output as the default processor and records the
/// softmax probabilities of the selected text tokens into an <see cref="AttentionMapStore"/>, keyed by the layer's
/// path and tagged with its latent resolution. Over the (77) text keys the explicit softmax is as cheap as the fused
/// kernel, so the output is computed from the same probabilities and the recording is exact and differentiable: a
/// loss on the maps reaches the U-Net weights and the encoder hidden states. On a self-attention layer the processor
/// uses the fused kernel and records nothing (self-attention never materialises its token-by-token matrix).
/// One instance may serve every layer.
/// </summary>
internal sealed class RecordingAttentionProcessor : IAttentionProcessor, IAttentionMapRecorder
{
    private AttentionTokenSelection _tokens;

    /// <summary>Creates a recorder writing to <paramref name="store"/>.</summary>
    /// <param name="store">Where maps go.</param>
    /// <param name="tokens">Which token positions to record (default: all).</param>
    public RecordingAttentionProcessor(AttentionMapStore store, AttentionTokenSelection? tokens = null)
    {
        Store = store ?? throw new ArgumentNullException(nameof(store));
        _tokens = tokens ?? AttentionTokenSelection.All;
    }

    /// <summary>The store that receives the maps.</summary>
    public AttentionMapStore Store { get; }

    /// <summary>The token positions to record; may be changed between forward passes (e.g. per prompt batch).</summary>
    public AttentionTokenSelection Tokens
    {
        get => _tokens;
        set => _tokens = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The token selection: the only per-batch setting a recomputation must see as the forward pass did.</summary>
    object? IAttentionMapRecorder.SnapshotState() => _tokens;

    /// <summary>Restores a token selection taken with <see cref="IAttentionMapRecorder.SnapshotState"/>.</summary>
    void IAttentionMapRecorder.RestoreState(object? state) =>
        _tokens = state as AttentionTokenSelection ?? throw new ArgumentException("Not a snapshot of a RecordingAttentionProcessor.", nameof(state));

    /// <summary>Clear the store at the start of every forward pass (default true).</summary>
    public bool ClearOnForward { get; set; } = true;

    /// <summary>Optional diagnostics callback: invoked with the layer path and the kernel used, once per call.</summary>
    public Action<string, AttentionKernel>? KernelObserver { get; set; }

    /// <inheritdoc />
    public void OnForwardStarting()
    {
        if (ClearOnForward) Store.Clear();
    }

    /// <inheritdoc />
    public Tensor Process(Attention attn, Tensor hiddenStates, Tensor? encoderHiddenStates, AttentionContext context)
    {
        ArgumentNullException.ThrowIfNull(attn);
        ArgumentNullException.ThrowIfNull(context);
        var (q, k, v) = attn.ProjectHeads(hiddenStates, encoderHiddenStates);
        if (!attn.IsCrossAttention || !Store.IsRecording)
        {
            KernelObserver?.Invoke(attn.Path, AttentionKernel.Fused);
            return attn.ProjectOut(AttentionMath.Fused(q, k, v, attn.UpcastAttention));
        }
        KernelObserver?.Invoke(attn.Path, AttentionKernel.ExplicitSoftmax);
        var (output, probabilities) = AttentionMath.Explicit(q, k, v, attn.Scale);
        var recorded = _tokens.Select(probabilities, attn.Path);
        Store.Add(new RecordedAttentionMap(attn.Path, context.Height, context.Width, recorded) { Tokens = _tokens });
        return attn.ProjectOut(output);
    }
}
