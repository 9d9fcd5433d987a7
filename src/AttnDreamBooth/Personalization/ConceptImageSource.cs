namespace AttnDreamBooth.Personalization;

/// <summary>
/// Where one concept image comes from: a file, or bytes captured from a stream. Reading is deferred to validation,
/// so a concept can be described before its files are checked.
/// </summary>
internal sealed class ConceptImageSource
{
    private readonly string? _path;
    private readonly byte[]? _bytes;

    private ConceptImageSource(string name, string? path, byte[]? bytes)
    {
        Name = name;
        _path = path;
        _bytes = bytes;
    }

    /// <summary>The file path, or the name given to in-memory data; used in every error message.</summary>
    public string Name { get; }

    /// <summary>The file path, or null for in-memory data.</summary>
    public string? FilePath => _path;

    /// <summary>An image file (the path is made absolute; the file is read when the images are loaded).</summary>
    public static ConceptImageSource FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        return new ConceptImageSource(full, full, null);
    }

    /// <summary>Image bytes in memory (copied), named <paramref name="name"/> in error messages.</summary>
    public static ConceptImageSource FromBytes(string name, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return new ConceptImageSource(name, null, bytes.ToArray());
    }

    /// <summary>Reads <paramref name="stream"/> to its end now (the stream is not kept or disposed).</summary>
    public static ConceptImageSource FromStream(string name, Stream stream)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead) throw new ArgumentException($"The stream for '{name}' is not readable.", nameof(stream));
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return new ConceptImageSource(name, null, copy.ToArray());
    }

    /// <summary>The encoded bytes.</summary>
    /// <param name="maxBytes">Refuse (without reading) data larger than this.</param>
    /// <exception cref="InvalidConceptImageException">The file is missing or unreadable, or larger than <paramref name="maxBytes"/>.</exception>
    public byte[] ReadAllBytes(long maxBytes = long.MaxValue)
    {
        if (_bytes is not null) return _bytes.LongLength > maxBytes ? throw TooBig(_bytes.LongLength, maxBytes) : _bytes;
        try
        {
            IO.RegularFile.Require(_path!);
            long length = new FileInfo(_path!).Length;
            if (length > maxBytes) throw TooBig(length, maxBytes);
            return File.ReadAllBytes(_path!);
        }
        catch (Exception e) when (e is IOException or IO.UnsupportedFileTypeException or UnauthorizedAccessException)
        {
            throw new InvalidConceptImageException(Name, ConceptImageProblemKind.Unreadable, $"cannot be read: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    private InvalidConceptImageException TooBig(long length, long maxBytes) =>
        new(Name, ConceptImageProblemKind.TooLarge, $"is {length:N0} bytes, more than the limit of {maxBytes:N0} (ConceptImageOptions.MaxFileBytes); it was not read.");
}
