namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// One call at a time on a pipeline, and no disposal under a running call (that would free tensors it is using).
/// Long calls run on one dedicated thread: TorchSharp's dispose scopes and grad mode are per thread. Every call runs
/// under <see cref="TensorRoots"/>, so no tensor it makes can be finalized under a native call.
/// </summary>
/// <param name="busyMessage">The message when a call is already running.</param>
/// <param name="disposeBusyMessage">The message when the pipeline is disposed during a call.</param>
internal sealed class PipelineGate(string busyMessage, string disposeBusyMessage)
{
    private readonly object _lock = new();
    private bool _busy;
    private bool _disposed;

    /// <summary>Runs <paramref name="work"/> exclusively on a dedicated thread.</summary>
    /// <param name="work">The call.</param>
    /// <param name="owner">The pipeline, named in <see cref="ObjectDisposedException"/>.</param>
    /// <param name="ct">Checked before the work starts (the work checks it further).</param>
    /// <param name="refuse">Returns the exception that refuses every call (e.g. a pipeline left broken), or null.</param>
    public Task<T> Run<T>(Func<T> work, object owner, CancellationToken ct, Func<Exception?>? refuse = null)
    {
        Enter(owner, refuse);
        // The token is checked inside, not passed to StartNew: a task cancelled before it starts would never clear the flag.
        return Task.Factory.StartNew(() => Entered(work, ct), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>As <see cref="Run{T}"/>, on the calling thread.</summary>
    public T RunHere<T>(Func<T> work, object owner, CancellationToken ct, Func<Exception?>? refuse = null)
    {
        Enter(owner, refuse);
        return Entered(work, ct);
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> once disposed.</summary>
    public void ThrowIfDisposed(object owner)
    {
        lock (_lock) ObjectDisposedException.ThrowIf(_disposed, owner);
    }

    /// <summary>Marks the owner disposed; false when it already was.</summary>
    /// <exception cref="InvalidOperationException">A call is running.</exception>
    public bool Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return false;
            if (_busy) throw new InvalidOperationException(disposeBusyMessage);
            _disposed = true;
            return true;
        }
    }

    private void Enter(object owner, Func<Exception?>? refuse)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, owner);
            if (_busy) throw new InvalidOperationException(busyMessage);
            if (refuse?.Invoke() is { } refusal) throw refusal;
            _busy = true;
        }
    }

    private T Entered<T>(Func<T> work, CancellationToken ct)
    {
        try
        {
            ct.ThrowIfCancellationRequested();
            return TensorRoots.Run(work);
        }
        finally
        {
            lock (_lock) _busy = false;
        }
    }
}
