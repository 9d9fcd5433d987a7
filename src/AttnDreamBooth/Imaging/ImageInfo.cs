namespace AttnDreamBooth.Imaging;

/// <summary>Encoded image formats the decoder accepts.</summary>
internal enum ImageFormat
{
    /// <summary>JPEG.</summary>
    Jpeg,

    /// <summary>PNG.</summary>
    Png,

    /// <summary>WebP (lossy or lossless).</summary>
    WebP,
}

/// <summary>What an image's header says, read without decoding the pixels.</summary>
/// <param name="Format">The encoded format.</param>
/// <param name="StoredWidth">Width as stored (before EXIF orientation).</param>
/// <param name="StoredHeight">Height as stored.</param>
/// <param name="ExifOrientation">The EXIF orientation tag value 1..8 (1 = upright; 5..8 swap width and height).</param>
internal sealed record ImageInfo(ImageFormat Format, int StoredWidth, int StoredHeight, int ExifOrientation)
{
    /// <summary>Width of the upright image.</summary>
    public int Width => ExifOrientation >= 5 ? StoredHeight : StoredWidth;

    /// <summary>Height of the upright image.</summary>
    public int Height => ExifOrientation >= 5 ? StoredWidth : StoredHeight;
}
