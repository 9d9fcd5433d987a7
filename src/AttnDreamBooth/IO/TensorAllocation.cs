using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace AttnDreamBooth.IO;

/// <summary>
/// Turns libtorch's allocation failures (which TorchSharp raises as a bare <see cref="ExternalException"/> whose message
/// carries a native stack trace) into a <see cref="TensorAllocationException"/> that says what was being built or run.
/// </summary>
internal static partial class TensorAllocation
{
    /// <summary>Whether <paramref name="exception"/> is libtorch reporting that it could not allocate memory (CPU allocator,
    /// CUDA caching allocator).</summary>
    public static bool IsFailure(Exception exception) =>
        exception is ExternalException && exception is not TensorAllocationException &&
        (exception.Message.Contains("can't allocate memory", StringComparison.Ordinal) ||
         exception.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase));

    /// <summary>The typed exception for a native allocation failure.</summary>
    public static TensorAllocationException Failed(string operation, Exception native, string advice)
    {
        var match = RequestedBytesPattern().Match(native.Message);
        long? bytes = match.Success && long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long b) ? b : null;
        return new TensorAllocationException(operation, bytes, advice, native);
    }

    /// <summary>Runs <paramref name="work"/>, turning a native allocation failure into a <see cref="TensorAllocationException"/>.</summary>
    public static T Guard<T>(string operation, string advice, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (Exception ex) when (IsFailure(ex))
        {
            throw Failed(operation, ex, advice);
        }
    }

    /// <summary>Builds a network, turning a native allocation failure into a <see cref="TensorAllocationException"/> that
    /// names the network and its size.</summary>
    public static T GuardModel<T>(string model, double parameters, Func<T> build)
    {
        try
        {
            return build();
        }
        catch (Exception ex) when (IsFailure(ex))
        {
            throw ModelFailed(model, parameters, ex);
        }
    }

    /// <summary>The failure while building a network with about <paramref name="parameters"/> parameters.</summary>
    public static TensorAllocationException ModelFailed(string model, double parameters, Exception native) =>
        Failed($"building the {model} (about {parameters:G3} parameters, {parameters * 4 / (1L << 30):N1} GiB in float32)", native,
            "Free memory or use a machine with more; to refuse configs this large before anything is allocated, lower " +
            "ResourceLimits.MaxParameters (see docs/security.md).");

    // The CPU allocator's wording: "DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes."
    [GeneratedRegex(@"tried to allocate (\d+) bytes")]
    private static partial Regex RequestedBytesPattern();
}
