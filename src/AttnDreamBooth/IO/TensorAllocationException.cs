namespace AttnDreamBooth.IO;

/// <summary>
/// libtorch could not allocate the memory for a tensor: building a model from its config, or a training or generation
/// call, needed more memory than the process may use. Says what was being done, how many bytes were asked for (when
/// libtorch reports it) and what to change; the process and the objects not being built are left in a usable state.
/// </summary>
/// <remarks>Only allocations that libtorch reports as errors can be turned into this exception; an allocation failure
/// deep inside native code that TorchSharp does not guard still ends the process. Configs are therefore checked against
/// <see cref="ResourceLimits"/> before anything is allocated (see docs/security.md).</remarks>
public sealed class TensorAllocationException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="operation">What was being done, e.g. "building the U-Net (8.6e+08 parameters)".</param>
    /// <param name="requestedBytes">The size of the allocation that failed, when known.</param>
    /// <param name="advice">What to change so that it fits.</param>
    /// <param name="inner">The native error.</param>
    public TensorAllocationException(string operation, long? requestedBytes, string advice, Exception? inner = null)
        : base($"Out of memory while {operation}: " +
               (requestedBytes is long bytes ? $"libtorch could not allocate {bytes:N0} bytes ({Format(bytes)})" : "libtorch could not allocate a tensor") +
               $". {advice}", inner)
    {
        Operation = operation;
        RequestedBytes = requestedBytes;
        Advice = advice;
    }

    /// <summary>What was being done when the allocation failed.</summary>
    public string Operation { get; }

    /// <summary>The size of the allocation that failed, or null when libtorch did not say.</summary>
    public long? RequestedBytes { get; }

    /// <summary>What to change so that it fits.</summary>
    public string Advice { get; }

    private static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):N1} GiB" : $"{bytes / (double)(1L << 20):N1} MiB";
}
