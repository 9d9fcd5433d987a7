using System.Runtime.InteropServices;
using TorchSharp;

namespace AttnDreamBooth;

/// <summary>
/// Turns libtorch's NNPACK convolution backend off (<c>at::globalContext().setUserEnabledNNPACK(false)</c>, what
/// <c>torch.backends.nnpack.set_flags(False)</c> does in Python) the first time the library builds a block with a 1×1
/// convolution.
/// </summary>
/// <remarks>
/// Why: with one libtorch thread, a float32 1×1 convolution on a batch under 16 is not given to oneDNN, so libtorch asks
/// whether NNPACK is available, and on a CPU where NNPACK cannot start (the 2-core AMD EPYC machines this project is
/// built on) libtorch 2.10 logs "Could not initialize NNPACK! Reason: Unsupported hardware." on every such call — 940
/// lines on standard error for a 40-step tiny pretraining at <c>OMP_NUM_THREADS=1</c>, thousands for one generation,
/// which buried the CLI's own output. Nothing is computed differently: libtorch hands a float32 convolution to NNPACK
/// only for a batch of 16 or more, and for those it has already chosen oneDNN, so the switch only skips the question.
/// The switch is process-wide and set only through libtorch's C++ API (TorchSharp 0.107 does not expose it), whose
/// symbol names are those of the Itanium C++ ABI: on Linux it is set; elsewhere, or if the library or the symbols are
/// not found, nothing happens.
/// </remarks>
internal static class Nnpack
{
    private const string LibTorchCpu = "libtorch_cpu.so";
    private const string GlobalContext = "_ZN2at13globalContextEv";
    private const string SetUserEnabled = "_ZN2at7Context20setUserEnabledNNPACKEb";
    private const string UserEnabled = "_ZNK2at7Context17userEnabledNNPACKEv";

    private static readonly Lazy<bool> TurnedOff = new(TurnOffNow, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Turns NNPACK off once per process; returns whether the switch could be set.</summary>
    public static bool TurnOff() => TurnedOff.Value;

    /// <summary>libtorch's switch as it stands, or null where it cannot be read (see the remarks).</summary>
    internal static unsafe bool? UserEnabledNow()
    {
        if (!TryContext(out var context, out var library)) return null;
        if (!NativeLibrary.TryGetExport(library, UserEnabled, out var get)) return null;
        return ((delegate* unmanaged<IntPtr, byte>)get)(context) != 0;
    }

    private static unsafe bool TurnOffNow()
    {
        if (!TryContext(out var context, out var library)) return false;
        if (!NativeLibrary.TryGetExport(library, SetUserEnabled, out var set)) return false;
        ((delegate* unmanaged<IntPtr, byte, void>)set)(context, 0);
        return true;
    }

    private static unsafe bool TryContext(out IntPtr context, out IntPtr library)
    {
        context = IntPtr.Zero;
        library = IntPtr.Zero;
        if (!OperatingSystem.IsLinux()) return false;
        // TorchSharp loads libtorch from its own package folders; asking for it by name afterwards returns that copy
        // (the loader matches already-loaded libraries by soname) instead of searching the disk.
        _ = torch.get_num_threads();
        if (!NativeLibrary.TryLoad(LibTorchCpu, out library)) return false;
        if (!NativeLibrary.TryGetExport(library, GlobalContext, out var global)) return false;
        context = ((delegate* unmanaged<IntPtr>)global)();
        return context != IntPtr.Zero;
    }
}
