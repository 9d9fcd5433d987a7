namespace AttnDreamBooth.Tests;

/// <summary>An <see cref="IProgress{T}"/> that records every report synchronously on the reporting thread (see
/// <see cref="InlineProgress{T}"/> for why not <see cref="Progress{T}"/>), then runs <paramref name="then"/> on it.
/// Reports may come from several threads.</summary>
public sealed class RecordingProgress<T>(Action<T>? then = null) : IProgress<T>
{
    private readonly List<T> _items = [];

    /// <summary>The reports so far, in the order they arrived.</summary>
    public IReadOnlyList<T> Items
    {
        get
        {
            lock (_items) return _items.ToArray();
        }
    }

    public void Report(T value)
    {
        lock (_items) _items.Add(value);
        then?.Invoke(value);
    }
}
