using SkiaSharp;
using TorchSharp;

namespace AttnDreamBooth.Evaluation;

/// <summary>An 8-bit RGB image, row-major <c>[height, width, 3]</c>: the input of <see cref="ClipImageProcessor"/>.</summary>
public sealed class RgbImage
{
    /// <summary>Wraps interleaved RGB bytes (not copied).</summary>
    /// <exception cref="ArgumentException">The buffer does not hold <c>height * width * 3</c> bytes.</exception>
    public RgbImage(byte[] pixels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (pixels.LongLength != (long)height * width * 3)
            throw new ArgumentException($"An RGB image of {height}x{width} needs {(long)height * width * 3} bytes, got {pixels.LongLength}.", nameof(pixels));
        Pixels = pixels;
        Height = height;
        Width = width;
    }

    /// <summary>Interleaved RGB bytes, row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>Columns.</summary>
    public int Width { get; }

    /// <summary>From a tensor <c>[H, W, 3]</c> of any numeric dtype holding integers 0..255 (e.g. uint8, or float32 as stored in fixtures).</summary>
    /// <exception cref="ArgumentException">Wrong shape, or values that are not integers in 0..255.</exception>
    public static RgbImage FromTensor(torch.Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.ndim != 3 || image.shape[2] != 3)
            throw new ArgumentException($"Expected an image tensor [H, W, 3], got [{string.Join(", ", image.shape)}].", nameof(image));
        using var scope = torch.NewDisposeScope();
        var values = image.detach().cpu().to_type(torch.float64);
        if (!values.eq(values.round()).all().item<bool>() || values.min().item<double>() < 0 || values.max().item<double>() > 255)
            throw new ArgumentException("Image tensor values must be integers in 0..255.", nameof(image));
        var bytes = values.to_type(torch.uint8).contiguous();
        return new RgbImage(bytes.bytes.ToArray(), (int)image.shape[0], (int)image.shape[1]);
    }

    /// <summary>The pixels of a generated or loaded <see cref="Pipelines.RgbImage"/> (same layout; the buffer is shared, not copied).</summary>
    public static RgbImage From(Pipelines.RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new RgbImage(image.Pixels, image.Height, image.Width);
    }

    /// <summary>From a SkiaSharp bitmap; alpha is dropped without compositing (as Pillow's <c>convert("RGB")</c>). A
    /// premultiplied bitmap has already lost the colour of fully transparent pixels; <see cref="Load"/> decodes unpremultiplied.</summary>
    public static RgbImage FromBitmap(SKBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        if (bitmap.AlphaType != SKAlphaType.Premul && bitmap.ColorType is SKColorType.Rgba8888 or SKColorType.Bgra8888)
            return FromRgbaBytes(bitmap.GetPixelSpan(), bitmap.Width, bitmap.Height, bitmap.RowBytes, bitmap.ColorType == SKColorType.Bgra8888);
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!bitmap.CopyTo(rgba, SKColorType.Rgba8888)) throw new ArgumentException($"Bitmaps of color type {bitmap.ColorType} cannot be converted to RGB.", nameof(bitmap));
        return FromRgbaBytes(rgba.GetPixelSpan(), rgba.Width, rgba.Height, rgba.RowBytes, bgr: false);
    }

    private static RgbImage FromRgbaBytes(ReadOnlySpan<byte> source, int width, int height, int rowBytes, bool bgr)
    {
        var pixels = new byte[width * height * 3];
        int r = bgr ? 2 : 0, b = bgr ? 0 : 2;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int i = y * rowBytes + x * 4, o = (y * width + x) * 3;
                pixels[o] = source[i + r];
                pixels[o + 1] = source[i + 1];
                pixels[o + 2] = source[i + b];
            }
        }
        return new RgbImage(pixels, height, width);
    }

    /// <summary>Decodes an image file (PNG, JPEG, WebP, …) without premultiplying alpha. EXIF orientation is not applied,
    /// as in CLIP's preprocessing.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file cannot be decoded.</exception>
    public static RgbImage Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Image '{path}' does not exist.", path);
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"'{path}' is not a decodable image.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new InvalidDataException($"'{path}' could not be decoded ({result}).");
        return FromBitmap(bitmap);
    }

    /// <summary>The image as a uint8 tensor <c>[H, W, 3]</c> on the CPU.</summary>
    public torch.Tensor ToTensor() => torch.tensor(Pixels, torch.uint8).reshape(Height, Width, 3);
}
