namespace AttnDreamBooth.IO;

/// <summary>
/// A path that must name a regular file names a FIFO, a device, a socket or a directory (directly or through a symbolic
/// link). Such files are refused by type before they are opened: reading a FIFO blocks until a writer appears and a
/// device such as <c>/dev/zero</c> never ends.
/// </summary>
public sealed class UnsupportedFileTypeException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public UnsupportedFileTypeException(string filePath, string resolvedPath, string fileType)
        : base(resolvedPath == filePath
            ? $"'{filePath}' is a {fileType}, not a regular file; it was not opened."
            : $"'{filePath}' resolves to '{resolvedPath}', which is a {fileType}, not a regular file; it was not opened.")
    {
        FilePath = filePath;
        ResolvedPath = resolvedPath;
        FileType = fileType;
    }

    /// <summary>The path as given.</summary>
    public string FilePath { get; }

    /// <summary>The path after following symbolic links.</summary>
    public string ResolvedPath { get; }

    /// <summary>What the file is (fifo, character device, block device, socket, directory).</summary>
    public string FileType { get; }
}
