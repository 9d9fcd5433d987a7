namespace AttnDreamBooth.Imaging;

/// <summary>Why an image was refused.</summary>
internal enum ImageProblemKind
{
    /// <summary>The file does not exist, cannot be read, or is not a regular file (a FIFO, device or socket).</summary>
    Unreadable,

    /// <summary>The file or stream is empty (0 bytes).</summary>
    Empty,

    /// <summary>Not a JPEG, PNG or WebP image (e.g. GIF, BMP, TIFF, HEIC or not an image at all).</summary>
    Unsupported,

    /// <summary>Looks like a supported format but its header or data is damaged or truncated.</summary>
    Corrupt,

    /// <summary>The header declares a width or height of 0.</summary>
    ZeroSized,

    /// <summary>The shorter side is below the minimum (<c>ConceptImageOptions.MinimumSide</c> for concept photos).</summary>
    TooSmall,

    /// <summary>The pixel count declared in the header exceeds <see cref="IO.ResourceLimits.MaxImagePixels"/> (a
    /// decompression-bomb guard, checked before decoding), or the file exceeds
    /// <see cref="IO.ResourceLimits.MaxImageFileBytes"/> (checked before reading).</summary>
    TooLarge,
}

/// <summary>One refused image: which, and why (unreadable, empty, unsupported, corrupt, zero-sized, too small or too
/// large, in words).</summary>
public sealed record ImageProblem
{
    internal ImageProblem(string imageName, ImageProblemKind kind, string detail)
    {
        ImageName = imageName;
        Kind = kind;
        Detail = detail;
    }

    /// <summary>The file path, or the name given to a stream.</summary>
    public string ImageName { get; }

    /// <summary>A human-readable explanation.</summary>
    public string Detail { get; }

    /// <summary>The kind of problem.</summary>
    internal ImageProblemKind Kind { get; }

    /// <inheritdoc />
    public override string ToString() => $"'{ImageName}': {Detail}";
}
