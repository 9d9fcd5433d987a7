namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// Collects the maps recorded by <see cref="RecordingAttentionProcessor"/>s during one forward pass, one per layer
/// path, in execution order. The processors clear it at the start of every forward pass; call <see cref="Clear"/>
/// once the maps are consumed (e.g. after <c>backward()</c>) so nothing stays alive between training steps. The
/// store owns the recorded tensors and disposes them on <see cref="Clear"/>. Not thread-safe: one store per
/// model call chain.
/// </summary>
internal sealed class AttentionMapStore : IDisposable
{
    private readonly List<RecordedAttentionMap> _maps = [];
    private readonly Dictionary<string, int> _byPath = new(StringComparer.Ordinal);
    private readonly List<AttentionMapCapture> _captures = [];

    /// <summary>The recorded maps in the order the layers ran.</summary>
    public IReadOnlyList<RecordedAttentionMap> Maps => _maps;

    /// <summary>Number of recorded maps.</summary>
    public int Count => _maps.Count;

    /// <summary>The layer paths that have a map.</summary>
    public IEnumerable<string> LayerPaths => _maps.Select(m => m.LayerPath);

    /// <summary>When false, processors writing to this store compute their output but record nothing.</summary>
    public bool IsRecording { get; set; } = true;

    /// <summary>The map of layer <paramref name="layerPath"/>.</summary>
    /// <exception cref="KeyNotFoundException">No map was recorded for that layer.</exception>
    public RecordedAttentionMap this[string layerPath] => TryGet(layerPath, out var map)
        ? map
        : throw new KeyNotFoundException($"No attention map was recorded for '{layerPath}' (recorded: {(_maps.Count == 0 ? "none" : string.Join(", ", LayerPaths))}).");

    /// <summary>Looks up the map of one layer.</summary>
    public bool TryGet(string layerPath, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RecordedAttentionMap? map)
    {
        map = _byPath.TryGetValue(layerPath, out int i) ? _maps[i] : null;
        return map is not null;
    }

    /// <summary>True while a <see cref="BeginCapture"/> scope is open: <see cref="Add"/> then goes to the capture.</summary>
    public bool IsCapturing => _captures.Count > 0;

    /// <summary>
    /// Redirects <see cref="Add"/> to the returned capture until it is disposed (captures nest; the innermost one
    /// receives the maps). The store's own maps are untouched. Gradient checkpointing uses this to turn the maps
    /// recorded inside a checkpointed block into outputs of the checkpointed function, so they carry gradients and
    /// the recomputation during backward records nothing twice.
    /// </summary>
    public AttentionMapCapture BeginCapture()
    {
        var capture = new AttentionMapCapture(this);
        _captures.Add(capture);
        return capture;
    }

    internal void EndCapture(AttentionMapCapture capture)
    {
        if (_captures.Count == 0 || !ReferenceEquals(_captures[^1], capture))
            throw new InvalidOperationException("Attention map captures must be ended innermost first.");
        _captures.RemoveAt(_captures.Count - 1);
    }

    /// <summary>Adds a map and takes ownership of its tensor (it is detached from any dispose scope and disposed by
    /// <see cref="Clear"/>). A second map for the same layer replaces the first. While a capture is open the map goes
    /// to the capture instead (see <see cref="BeginCapture"/>).</summary>
    public void Add(RecordedAttentionMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.Probabilities.DetachFromDisposeScope();
        if (_captures.Count > 0)
        {
            _captures[^1].Append(map);
            return;
        }
        if (_byPath.TryGetValue(map.LayerPath, out int i))
        {
            if (!ReferenceEquals(_maps[i].Probabilities, map.Probabilities)) _maps[i].Probabilities.Dispose();
            _maps[i] = map;
            return;
        }
        _byPath[map.LayerPath] = _maps.Count;
        _maps.Add(map);
    }

    /// <summary>Removes and disposes every map.</summary>
    public void Clear()
    {
        foreach (var map in _maps) map.Probabilities.Dispose();
        _maps.Clear();
        _byPath.Clear();
    }

    /// <summary>Same as <see cref="Clear"/>.</summary>
    public void Dispose() => Clear();
}
