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

    /// <summary>From a SkiaSharp bitmap; alpha is dropped without compositing (as Pillow's <c>convert("RGB")</c>).</summary>
    public static RgbImage FromBitmap(SKBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!bitmap.CopyTo(rgba, SKColorType.Rgba8888))
        {
            using var canvas = new SKCanvas(rgba);
            canvas.DrawBitmap(bitmap, 0, 0);
        }
        var source = rgba.GetPixelSpan();
        var pixels = new byte[bitmap.Width * bitmap.Height * 3];
        for (int i = 0, o = 0; o < pixels.Length; i += 4, o += 3)
        {
            pixels[o] = source[i];
            pixels[o + 1] = source[i + 1];
            pixels[o + 2] = source[i + 2];
        }
        return new RgbImage(pixels, bitmap.Height, bitmap.Width);
    }

    /// <summary>Decodes an image file (PNG, JPEG, WebP, …). EXIF orientation is not applied, as in CLIP's preprocessing.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file cannot be decoded.</exception>
    public static RgbImage Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Image '{path}' does not exist.", path);
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidDataException($"'{path}' is not a decodable image.");
        return FromBitmap(bitmap);
    }

    /// <summary>The image as a uint8 tensor <c>[H, W, 3]</c> on the CPU.</summary>
    public torch.Tensor ToTensor() => torch.tensor(Pixels, torch.uint8).reshape(Height, Width, 3);
}
