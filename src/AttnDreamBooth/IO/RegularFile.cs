using System.Runtime.InteropServices;

namespace AttnDreamBooth.IO;

/// <summary>
/// Checks that a path names a regular file before anything opens it. Symbolic links are resolved to their final
/// target and the target is checked, so a link to <c>/dev/zero</c> or to a FIFO is refused like the device itself.
/// </summary>
/// <remarks>On Linux (x64, arm64) the file type comes from <c>stat(2)</c>; elsewhere only directories are detected.
/// The check and the later open are two system calls: a file swapped in between (by someone able to write the folder)
/// is outside what this protects against.</remarks>
internal static class RegularFile
{
    /// <summary>Throws unless <paramref name="path"/> exists and is (or links to) a regular file; returns the full path.
    /// A path that is something else is an I/O error like a missing file: callers handle both alike.</summary>
    /// <exception cref="FileNotFoundException">Nothing is at the path (or a link dangles).</exception>
    /// <exception cref="IOException">The path is a FIFO, device, socket or directory; it was not opened.</exception>
    public static string Require(string path)
    {
        var (full, resolved, type) = Inspect(path);
        if (type is null) throw new FileNotFoundException($"'{full}' does not exist.", full);
        if (type != Regular)
            throw new IOException(resolved == full
                ? $"'{full}' is a {type}, not a regular file; it was not opened."
                : $"'{full}' resolves to '{resolved}', which is a {type}, not a regular file; it was not opened.");
        return full;
    }

    /// <summary>The full path, the path after following symbolic links, and what is there ("regular file", "directory",
    /// "fifo", "character device", "block device", "socket"; null when nothing is).</summary>
    /// <exception cref="FileNotFoundException">A link dangles.</exception>
    public static (string Full, string Resolved, string? Type) Inspect(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string resolved = full;
        var info = new FileInfo(full);
        if (info.LinkTarget is not null)
        {
            var target = info.ResolveLinkTarget(returnFinalTarget: true)
                ?? throw new FileNotFoundException($"'{full}' is a symbolic link whose target cannot be resolved.", full);
            resolved = target.FullName;
        }
        return (full, resolved, Directory.Exists(resolved) ? "directory" : FileType(resolved));
    }

    private const string Regular = "regular file";

    /// <summary>True when <paramref name="path"/> is (or links to) a regular file.</summary>
    public static bool IsRegular(string path)
    {
        try
        {
            Require(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string? FileType(string path)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
            return File.Exists(path) ? "regular file" : null;
        // struct stat: st_mode is 4 bytes at offset 24 on x86_64 and 16 on the generic (arm64) layout; 256 bytes cover both.
        Span<byte> buffer = stackalloc byte[256];
        int rc;
        unsafe
        {
            fixed (byte* b = buffer) rc = Stat(path, b);
        }
        if (rc != 0) return null;
        int offset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        uint mode = BitConverter.ToUInt32(buffer.Slice(offset, 4));
        return (mode & 0xF000) switch
        {
            0x8000 => "regular file",
            0x4000 => "directory",
            0x1000 => "FIFO (named pipe)",
            0x2000 => "character device",
            0x6000 => "block device",
            0xC000 => "socket",
            _ => "special file",
        };
    }

    private static unsafe int Stat(string path, byte* buffer)
    {
        try
        {
            return StatNative(path, buffer);
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.33 exports only the versioned __xstat (version 1 on x86_64, 0 on arm64).
            return XStatNative(RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 1 : 0, path, buffer);
        }
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern unsafe int StatNative([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buffer);

    [DllImport("libc", EntryPoint = "__xstat", SetLastError = true)]
    private static extern unsafe int XStatNative(int version, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buffer);
}
