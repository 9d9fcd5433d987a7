using System.Runtime.InteropServices;

namespace AttnDreamBooth.Cli;

/// <summary>
/// Has glibc map every native allocation of 1 MiB or more on its own (<c>mallopt(M_MMAP_THRESHOLD, 1 MiB)</c>), so the
/// memory of a freed tensor goes back to the system, unless the process was started with a threshold of its own. The
/// <c>train</c> command does it for a real-size model on the CPU: before loading it when the U-Net's safetensors headers
/// give its size (<see cref="UNetSizeOnDisk"/>), otherwise once it is loaded.
/// </summary>
/// <remarks>
/// Why: libtorch takes most U-Net tensors from glibc's heaps (below glibc's mmap threshold, which raises itself up to
/// 32 MiB as large blocks are freed), and a block freed there stays in the process. A whole real-size stage-3 run
/// (512 px, checkpointing, 8-bit states) peaked at 10.00 GiB with glibc's defaults, at 8.96 GiB with the threshold
/// fixed from the start and at 9.39 GiB with it fixed, as the CLI does, after loading the model; its steps were no
/// slower (docs/training-at-scale.md, "Whole runs at real size"). Only there: small models' tensors
/// of a few MiB, allocated and freed at every step, would each cost fresh page faults (a 128 KiB threshold made the
/// Shapes pretraining 2.5× slower, docs/shapes-world.md). The CLI sets it, not the library: it changes the allocator of
/// the whole process, which is the host application's call.
/// </remarks>
internal static class NativeHeap
{
    /// <summary>The threshold the CLI sets, in bytes.</summary>
    internal const int Threshold = 1 << 20;

    // M_MMAP_THRESHOLD in glibc's malloc.h.
    private const int MmapThresholdParameter = -3;

    /// <summary>Whether to set the threshold: on Linux, when neither <c>MALLOC_MMAP_THRESHOLD_</c> nor a
    /// <c>glibc.malloc.mmap_threshold</c> tunable was given to the process.</summary>
    internal static bool ShouldSet(bool isLinux, Func<string, string?> environment) =>
        isLinux
        && environment("MALLOC_MMAP_THRESHOLD_") is null
        && !(environment("GLIBC_TUNABLES") ?? "").Contains("glibc.malloc.mmap_threshold", StringComparison.Ordinal);

    /// <summary>Sets the threshold when <see cref="ShouldSet"/> says so; returns whether the C library took it (false
    /// where there is no glibc, e.g. musl).</summary>
    internal static bool ReturnLargeBlocksToTheSystem()
    {
        if (!ShouldSet(OperatingSystem.IsLinux(), Environment.GetEnvironmentVariable)) return false;
        try
        {
            return MallOpt(MmapThresholdParameter, Threshold) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    // Blittable arguments only, so a plain DllImport needs no marshalling code (LibraryImport would need unsafe blocks).
    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);
}
