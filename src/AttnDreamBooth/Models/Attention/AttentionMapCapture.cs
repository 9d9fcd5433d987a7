namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// Maps recorded into an <see cref="AttentionMapStore"/> while a capture is open (see
/// <see cref="AttentionMapStore.BeginCapture"/>). The capture does not own the tensors: they are detached from every
/// dispose scope, and whoever opened the capture hands them on (e.g. adds them to the store) or disposes them.
/// Dispose the capture to end it.
/// </summary>
internal sealed class AttentionMapCapture : IDisposable
{
    private readonly List<RecordedAttentionMap> _maps = [];
    private bool _ended;

    internal AttentionMapCapture(AttentionMapStore store) => Store = store;

    /// <summary>The store whose additions are captured.</summary>
    public AttentionMapStore Store { get; }

    /// <summary>The captured maps, in the order they were recorded.</summary>
    public IReadOnlyList<RecordedAttentionMap> Maps => _maps;

    internal void Append(RecordedAttentionMap map) => _maps.Add(map);

    /// <summary>Ends the capture; later additions go to the store again (or to an enclosing capture).</summary>
    /// <exception cref="InvalidOperationException">A capture opened later on the same store is still open.</exception>
    public void Dispose()
    {
        if (_ended) return;
        Store.EndCapture(this);
        _ended = true;
    }
}
