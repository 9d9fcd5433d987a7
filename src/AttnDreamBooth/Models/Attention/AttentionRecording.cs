namespace AttnDreamBooth.Models.Attention;

/// <summary>Installs attention-map recording on a model with swappable attention processors (e.g. the U-Net).</summary>
internal static class AttentionRecording
{
    /// <summary>
    /// Installs one <see cref="RecordingAttentionProcessor"/> writing to <paramref name="store"/> on every
    /// cross-attention layer of <paramref name="model"/> (or those <paramref name="layers"/> accepts); self-attention
    /// layers keep their processors (the fused kernel). Disposing the returned session puts the previous processors
    /// back. Typical use: attach, set <see cref="AttentionRecordingSession.Tokens"/> per batch, run the U-Net, read
    /// <c>store.Maps</c>, clear the store after <c>backward()</c>.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="store">Receives the maps.</param>
    /// <param name="tokens">Token positions to record (default: all).</param>
    /// <param name="layers">Optional filter over cross-attention layers (default: all of them).</param>
    public static AttentionRecordingSession Attach(this IAttentionProcessorHost model, AttentionMapStore store,
        AttentionTokenSelection? tokens = null, Func<AttentionLayerInfo, bool>? layers = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(store);
        var processor = new RecordingAttentionProcessor(store, tokens);
        var previous = model.AttentionProcessors;
        var chosen = model.AttentionLayers.Where(l => l.IsCrossAttention && (layers?.Invoke(l) ?? true)).Select(l => l.Path).ToArray();
        if (chosen.Length == 0) throw new ArgumentException("No cross-attention layer matches the filter.", nameof(layers));
        model.SetAttentionProcessor(chosen.ToDictionary(p => p, _ => (IAttentionProcessor)processor, StringComparer.Ordinal));
        return new AttentionRecordingSession(model, processor, chosen, chosen.ToDictionary(p => p, p => previous[p], StringComparer.Ordinal));
    }
}

/// <summary>A recorder installed on a model by <see cref="AttentionRecording.Attach"/>; disposing it restores the
/// previous processors of the recorded layers (the store is left to its owner).</summary>
internal sealed class AttentionRecordingSession : IDisposable
{
    private readonly IAttentionProcessorHost _model;
    private readonly IReadOnlyDictionary<string, IAttentionProcessor> _previous;
    private bool _disposed;

    internal AttentionRecordingSession(IAttentionProcessorHost model, RecordingAttentionProcessor processor, IReadOnlyList<string> layers,
        IReadOnlyDictionary<string, IAttentionProcessor> previous)
    {
        _model = model;
        Processor = processor;
        LayerPaths = layers;
        _previous = previous;
    }

    /// <summary>The installed recorder (shared by all recorded layers).</summary>
    public RecordingAttentionProcessor Processor { get; }

    /// <summary>The store receiving the maps.</summary>
    public AttentionMapStore Store => Processor.Store;

    /// <summary>The paths of the recorded layers, in module order.</summary>
    public IReadOnlyList<string> LayerPaths { get; }

    /// <summary>The token positions recorded; may be changed between forward passes.</summary>
    public AttentionTokenSelection Tokens
    {
        get => Processor.Tokens;
        set => Processor.Tokens = value;
    }

    /// <summary>Restores the previous processors.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _model.SetAttentionProcessor(_previous);
    }
}
