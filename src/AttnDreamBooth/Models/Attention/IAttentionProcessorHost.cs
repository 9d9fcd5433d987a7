namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// A model whose attention layers are addressable by module path and whose processors can be swapped, as diffusers'
/// <c>attn_processors</c> / <c>set_attn_processor</c>. <see cref="AttentionRecording.Attach"/> works on any host, so
/// recording needs no knowledge of the model that holds the layers.
/// </summary>
internal interface IAttentionProcessorHost
{
    /// <summary>Every attention layer, in module order.</summary>
    IReadOnlyList<AttentionLayerInfo> AttentionLayers { get; }

    /// <summary>The current processor of every attention layer, by module path.</summary>
    IReadOnlyDictionary<string, IAttentionProcessor> AttentionProcessors { get; }

    /// <summary>Replaces the processors of the given layers (by module path); other layers keep theirs.</summary>
    void SetAttentionProcessor(IReadOnlyDictionary<string, IAttentionProcessor> processors);
}
