using TorchSharp;

namespace AttnDreamBooth;

/// <summary>
/// Runs library work with every tensor it creates held by a dispose scope until the work returns; then the tensors the
/// work did not dispose go where they would have gone without it (the caller's scope, or none).
/// </summary>
/// <remarks>
/// Why: TorchSharp frees a tensor's native handle in its finalizer, and nothing keeps a tensor alive during a native
/// call that uses it. A temporary outside any scope (<c>p.detach().cpu()</c>, the <c>to_type</c> result passed to
/// <c>copy_</c>, or a state-dict handle after its last use) is unreachable once its handle has been read, so a garbage
/// collection started by another thread can finalize it while libtorch is still reading it. CI crashed twice this way
/// (SIGSEGV in <c>at::TensorIteratorBase::populate_operands</c>, on a "Long Running" and on a thread-pool worker
/// thread). Inside a scope every tensor is reachable from the scope, so none can be finalized under a call. The scope
/// is per thread, as TorchSharp's are: wrap the work on the thread that runs it.
/// </remarks>
public static class TensorRoots
{
    [ThreadStatic] private static DisposeScope? _root;

    /// <summary>Tensors the innermost running <see cref="Run{T}"/> of this thread holds (0 outside one): what its work
    /// created outside its own scopes and has not disposed. A step loop must not make it grow.</summary>
    internal static int HeldOnThisThread => _root?.DisposablesCount ?? 0;

    /// <summary>Runs <paramref name="work"/> under a rooting scope (see the class remarks).</summary>
    public static T Run<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var outer = _root;
        var scope = torch.NewDisposeScope();
        _root = scope;
        try
        {
            return work();
        }
        finally
        {
            _root = outer;
            // Nothing is disposed here: results, parameters and caches the work made stay alive, handed on exactly as
            // they would have been registered without this scope.
            scope.MoveToOuter(scope.DisposablesView.ToArray());
            scope.Dispose();
        }
    }
}
