using AttnDreamBooth.IO;

namespace AttnDreamBooth.Imaging;

/// <summary>
/// Where one encoded image comes from: a file, or bytes captured from a stream. Reading is deferred to decoding, so a
/// concept can be described before its files are checked. The one place image files are opened: only regular files,
/// their size checked on the opened handle before anything is read.
/// </summary>
internal sealed class ImageSource
{
    private readonly string? _path;
    private readonly byte[]? _bytes;

    private ImageSource(string name, string? path, byte[]? bytes)
    {
        Name = name;
        _path = path;
        _bytes = bytes;
    }

    /// <summary>The file path, or the name given to in-memory data; used in every error message.</summary>
    public string Name { get; }

    /// <summary>The file path, or null for in-memory data.</summary>
    public string? FilePath => _path;

    /// <summary>An image file (the path is made absolute; the file is read when the image is decoded).</summary>
    public static ImageSource FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        return new ImageSource(full, full, null);
    }

    /// <summary>Image bytes in memory (copied), named <paramref name="name"/> in error messages.</summary>
    public static ImageSource FromBytes(string name, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return new ImageSource(name, null, bytes.ToArray());
    }

    /// <summary>Reads <paramref name="stream"/> to its end now (the stream is not kept or disposed).</summary>
    public static ImageSource FromStream(string name, Stream stream)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead) throw new ArgumentException($"The stream for '{name}' is not readable.", nameof(stream));
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return new ImageSource(name, null, copy.ToArray());
    }

    /// <summary>The encoded bytes.</summary>
    /// <param name="maxBytes">Refuse (without reading) data larger than this.</param>
    /// <exception cref="InvalidImageException">The file is missing, unreadable or not a regular file, or larger than
    /// <paramref name="maxBytes"/>.</exception>
    public byte[] ReadAllBytes(long maxBytes)
    {
        if (_bytes is not null) return _bytes.LongLength > maxBytes ? throw TooBig(_bytes.LongLength, maxBytes) : _bytes;
        try
        {
            RegularFile.Require(_path!);
            using var stream = new FileStream(_path!, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            long length = stream.Length;
            if (length > maxBytes) throw TooBig(length, maxBytes);
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidImageException(Name, ImageProblemKind.Unreadable, $"cannot be read: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    private InvalidImageException TooBig(long length, long maxBytes) =>
        new(Name, ImageProblemKind.TooLarge, $"is {length:N0} bytes, which {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxImageFileBytes), maxBytes)}; it was not read.");
}
