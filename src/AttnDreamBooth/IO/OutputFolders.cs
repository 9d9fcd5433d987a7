using System.Text.RegularExpressions;

namespace AttnDreamBooth.IO;

/// <summary>
/// Housekeeping for folders the library writes: recovery and removal of the temporaries <see cref="AtomicFile"/> leaves
/// behind when a process dies mid-write, and the writability / free-space check made before a long run starts.
/// </summary>
internal static partial class OutputFolders
{
    // AtomicFile's names: ".<target>.<32 hex>.tmp" (being written) and ".<target>.<32 hex>.old" (the previous version, moved aside).
    [GeneratedRegex(@"^\.(?<target>.+)\.[0-9a-f]{32}\.(?<kind>tmp|old)$", RegexOptions.CultureInvariant)]
    private static partial Regex TemporaryName();

    /// <summary>
    /// Cleans the temporaries of our own naming in <paramref name="folder"/> (not recursive): a moved-aside previous
    /// version whose target is missing (the process died between the two renames) is renamed back, so the last complete
    /// version is at its path again; every other temporary is deleted. Returns the paths restored and deleted.
    /// </summary>
    public static (IReadOnlyList<string> Restored, IReadOnlyList<string> Deleted) CleanStaleTemporaries(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var restored = new List<string>();
        var deleted = new List<string>();
        if (!Directory.Exists(folder)) return (restored, deleted);
        // Restore first: an ".old" may be the only complete copy.
        var entries = Directory.EnumerateFileSystemEntries(folder).Select(p => (Path: p, Match: TemporaryName().Match(Path.GetFileName(p))))
            .Where(e => e.Match.Success).OrderBy(e => e.Match.Groups["kind"].Value == "old" ? 0 : 1).ThenBy(e => e.Path, StringComparer.Ordinal).ToArray();
        foreach (var (path, match) in entries)
        {
            string target = Path.Combine(folder, match.Groups["target"].Value);
            bool isDirectory = Directory.Exists(path);
            if (match.Groups["kind"].Value == "old" && !Directory.Exists(target) && !File.Exists(target))
            {
                if (isDirectory) Directory.Move(path, target);
                else File.Move(path, target);
                restored.Add(target);
                continue;
            }
            if (isDirectory) Directory.Delete(path, recursive: true);
            else File.Delete(path);
            deleted.Add(path);
        }
        return (restored, deleted);
    }

    /// <summary>
    /// Checks that <paramref name="folder"/> can be created and written (by writing and deleting a probe file) and that
    /// its file system has at least <paramref name="requiredBytes"/> free.
    /// </summary>
    /// <param name="folder">The folder (created when missing).</param>
    /// <param name="requiredBytes">What the run will write there at most at once.</param>
    /// <param name="purpose">What the folder is for, e.g. "checkpoints" (for the message).</param>
    /// <exception cref="OutputFolderException">Not writable, or too little free space (sizes stated).</exception>
    public static void RequireWritable(string folder, long requiredBytes, string purpose)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string full = Path.GetFullPath(folder);
        try
        {
            Directory.CreateDirectory(full);
            string probe = Path.Combine(full, $".attndreambooth-probe.{Guid.NewGuid():N}.tmp");
            using (var stream = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
                stream.WriteByte(0);
                stream.Flush(flushToDisk: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OutputFolderException(full, $"the {purpose} folder is not writable ({e.Message}); nothing was trained", e);
        }
        long free;
        try
        {
            free = new DriveInfo(full).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return; // The platform cannot say; the atomic writes still fail cleanly if the disk fills.
        }
        if (free < requiredBytes)
            throw new OutputFolderException(full, $"the {purpose} need about {Mib(requiredBytes)} but only {Mib(free)} are free on its disk; free space or choose another folder");
    }

    internal static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):N1} MiB";
}
