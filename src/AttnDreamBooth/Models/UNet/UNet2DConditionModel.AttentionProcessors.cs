using AttnDreamBooth.Models.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

using Attention = AttnDreamBooth.Models.Attention.Attention;

// The attention-processor registry: every attention layer by module path, and the ways to swap their processors.
public sealed partial class UNet2DConditionModel
{
    /// <summary>Every attention layer, in module order.</summary>
    internal IReadOnlyList<AttentionLayerInfo> AttentionLayers { get; }

    IReadOnlyList<AttentionLayerInfo> IAttentionProcessorHost.AttentionLayers => AttentionLayers;

    /// <summary>The current processor of every attention layer, by module path.</summary>
    public IReadOnlyDictionary<string, IAttentionProcessor> AttentionProcessors =>
        _attentionLayers.ToDictionary(a => a.Path, a => a.Processor, StringComparer.Ordinal);

    /// <summary>The attention module at <paramref name="path"/>.</summary>
    /// <exception cref="KeyNotFoundException">No attention layer has that path.</exception>
    public Attention GetAttentionLayer(string path) =>
        _attentionLayers.FirstOrDefault(a => a.Path == path) ?? throw new KeyNotFoundException($"The U-Net has no attention layer '{path}'.");

    /// <summary>Uses <paramref name="processor"/> for every attention layer.</summary>
    public void SetAttentionProcessor(IAttentionProcessor processor)
    {
        ArgumentNullException.ThrowIfNull(processor);
        foreach (var layer in _attentionLayers) layer.Processor = processor;
    }

    /// <summary>Sets the processors of the layers named in <paramref name="processors"/> (module path → processor);
    /// other layers keep theirs. Unknown paths are rejected before anything changes.</summary>
    /// <exception cref="ArgumentException">A path names no attention layer.</exception>
    public void SetAttentionProcessor(IReadOnlyDictionary<string, IAttentionProcessor> processors)
    {
        ArgumentNullException.ThrowIfNull(processors);
        var byPath = _attentionLayers.ToDictionary(a => a.Path, StringComparer.Ordinal);
        var unknown = processors.Keys.Where(k => !byPath.ContainsKey(k)).ToArray();
        if (unknown.Length > 0)
            throw new ArgumentException($"No attention layer has the path(s): {string.Join(", ", unknown)}.", nameof(processors));
        if (processors.FirstOrDefault(p => p.Value is null) is { Key: not null } missing)
            throw new ArgumentException($"The processor for '{missing.Key}' is null.", nameof(processors));
        foreach (var (path, processor) in processors) byPath[path].Processor = processor;
    }

    /// <summary>Asks <paramref name="selector"/> for each attention layer's processor (it sees the layer's
    /// <see cref="Attention.Path"/>, <see cref="Attention.IsCrossAttention"/>, head layout and
    /// <see cref="Attention.DownscaleFactor"/>); a null answer leaves the layer unchanged. Returns the number of layers
    /// changed.</summary>
    public int SetAttentionProcessor(Func<Attention, IAttentionProcessor?> selector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        int changed = 0;
        foreach (var layer in _attentionLayers)
        {
            if (selector(layer) is { } processor)
            {
                layer.Processor = processor;
                changed++;
            }
        }
        return changed;
    }

    /// <summary>Puts the default fused processor back on every layer.</summary>
    public void ResetAttentionProcessors() => SetAttentionProcessor(ScaledDotProductAttentionProcessor.Instance);
}
