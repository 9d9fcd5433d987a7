using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AttnDreamBooth;

/// <summary>
/// Turns on libtorch's transparent-huge-page allocation (<c>THP_MEM_ALLOC_ENABLE=1</c>) for the process when the
/// library is loaded, unless the variable is already set. libtorch then backs every CPU tensor of 2 MiB or more with
/// 2 MiB pages (<c>madvise(MADV_HUGEPAGE)</c>), which the kernel grants in its default <c>madvise</c> mode.
/// </summary>
/// <remarks>
/// Why: oneDNN's convolution re-lays the whole weight out on every call, and that copy's strided walk through a large
/// weight thrashes the TLB on 4 KiB pages. Measured on the 2-core machine (docs/benchmarks.md, "Huge pages"): the
/// 1280 × 1280 × 3 × 3 weight's copy takes 160 ms on 4 KiB pages against 12 ms for the convolution itself; the
/// SD 2.1-base U-Net forward at 32×32 latents takes 1.43 s instead of 3.49 s and a stage-3 step 6.8 s instead of
/// 18.8 s. libtorch reads the variable once, at its first allocation, so it only takes effect when this assembly
/// loads before the process creates its first tensor; an app that creates tensors earlier sets the variable itself.
/// Opting out: start the process with <c>THP_MEM_ALLOC_ENABLE=0</c>. Only Linux has transparent huge pages; elsewhere
/// nothing is changed.
/// </remarks>
internal static partial class HugePages
{
    /// <summary>The environment variable libtorch's CPU allocator reads.</summary>
    public const string Variable = "THP_MEM_ALLOC_ENABLE";

#pragma warning disable CA2255 // A library module initializer: libtorch reads the variable once, before any of our code could run.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void EnableByDefault() => Apply(OperatingSystem.IsLinux(), NativeValue, SetNative);

    /// <summary>Sets <see cref="Variable"/> to 1 on Linux unless the process already has a value; returns whether it
    /// set it.</summary>
    internal static bool Apply(bool isLinux, Func<string, string?> current, Action<string, string> set)
    {
        if (!isLinux || current(Variable) is not null) return false;
        set(Variable, "1");
        return true;
    }

    /// <summary>The variable as the native side (libtorch's <c>getenv</c>) sees it; .NET keeps its own copy of the
    /// environment, so <see cref="Environment.GetEnvironmentVariable(string)"/> is not enough.</summary>
    internal static string? NativeValue(string name)
    {
        if (!OperatingSystem.IsLinux()) return Environment.GetEnvironmentVariable(name);
        var value = GetEnvNative(name);
        return value == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(value);
    }

    private static void SetNative(string name, string value)
    {
        // overwrite = 0: a value that appeared in between (another thread) wins.
        if (SetEnvNative(name, value, 0) != 0) return;
        Environment.SetEnvironmentVariable(name, NativeValue(name));
    }

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetEnvNative(string name);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnvNative(string name, string value, int overwrite);
}
