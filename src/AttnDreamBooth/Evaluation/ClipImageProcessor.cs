using AttnDreamBooth.Imaging;
using TorchSharp;

namespace AttnDreamBooth.Evaluation;

/// <summary>
/// transformers' <c>CLIPImageProcessor</c>: resize the shorter side to 224 with Pillow's bicubic filter (the longer side
/// to <c>int(224 * long / short)</c>, truncated), centre crop 224 x 224 with floor offsets, <c>x / 255</c>, normalise per
/// channel, channels first. The resampling reproduces Pillow bit for bit, so pixel values match the Python reference to
/// float rounding (the CLIP scores are sensitive to the resampler at the 1e-3 level).
/// </summary>
internal sealed class ClipImageProcessor
{
    /// <summary>Creates a processor (defaults: the OpenAI CLIP preprocessing).</summary>
    public ClipImageProcessor(ClipImageProcessorConfig? config = null) => Config = config ?? new ClipImageProcessorConfig();

    /// <summary>The settings.</summary>
    public ClipImageProcessorConfig Config { get; }

    /// <summary>Reads <c>preprocessor_config.json</c> from a CLIP model folder (defaults when the file is absent).</summary>
    public static ClipImageProcessor FromFolder(string folder)
    {
        string path = Path.Combine(folder, "preprocessor_config.json");
        return new ClipImageProcessor(File.Exists(path) ? ClipImageProcessorConfig.Load(path) : null);
    }

    /// <summary>The size after the shortest-edge resize, as transformers computes it.</summary>
    public (int Height, int Width) ResizedSize(int height, int width)
    {
        if (!Config.DoResize) return (height, width);
        int target = Config.ShortestEdge;
        bool portrait = height > width;
        int shortSide = portrait ? width : height;
        int longSide = portrait ? height : width;
        int newLong = (int)((long)target * longSide / shortSide);
        return portrait ? (newLong, target) : (target, newLong);
    }

    /// <summary>The top-left corner of the centre crop in an image of the given size: floor offsets, as transformers
    /// (torchvision's CenterCrop rounds and can be one pixel off); negative when the image is smaller than the crop.</summary>
    public (int Top, int Left) CropOffsets(int height, int width) =>
        (FloorDiv(height - Config.CropHeight, 2), FloorDiv(width - Config.CropWidth, 2));

    /// <summary>The resized and cropped 8-bit image (before rescaling).</summary>
    public RgbImage ResizeAndCrop(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (h, w) = ResizedSize(image.Height, image.Width);
        byte[] pixels = (h, w) == (image.Height, image.Width) ? image.Pixels : PillowBicubic.Resize(image.Pixels, image.Height, image.Width, h, w);
        if (!Config.DoCenterCrop) return new RgbImage(w, h, pixels);
        int cropH = Config.CropHeight, cropW = Config.CropWidth;
        // Offsets may be negative when the image is smaller than the crop: the outside is zero-padded, as transformers does.
        var (top, left) = CropOffsets(h, w);
        var cropped = new byte[cropH * cropW * 3];
        for (int y = 0; y < cropH; y++)
        {
            int sy = y + top;
            if (sy < 0 || sy >= h) continue;
            int x0 = Math.Max(0, -left), x1 = Math.Min(cropW, w - left);
            if (x1 <= x0) continue;
            Array.Copy(pixels, (sy * w + left + x0) * 3, cropped, (y * cropW + x0) * 3, (x1 - x0) * 3);
        }
        return new RgbImage(cropW, cropH, cropped);
    }

    private static int FloorDiv(int a, int b) => (int)Math.Floor(a / (double)b);

    /// <summary>Preprocesses images into <c>pixel_values</c> <c>[N, 3, H, W]</c> float32 on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">The list is empty, or the processed sizes differ (centre crop disabled).</exception>
    public torch.Tensor Preprocess(IReadOnlyList<RgbImage> images, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("At least one image is needed.", nameof(images));
        var processed = images.Select(ResizeAndCrop).ToArray();
        int h = processed[0].Height, w = processed[0].Width;
        if (processed.Any(p => p.Height != h || p.Width != w))
            throw new ArgumentException("Processed images differ in size; enable centre cropping to batch them.", nameof(images));
        int plane = h * w;
        var values = new float[images.Count * 3 * plane];
        var mean = Config.ImageMean.Select(m => (float)m).ToArray();
        var std = Config.ImageStd.Select(s => (float)s).ToArray();
        for (int n = 0; n < processed.Length; n++)
        {
            byte[] pixels = processed[n].Pixels;
            for (int c = 0; c < 3; c++)
            {
                int offset = (n * 3 + c) * plane;
                for (int i = 0; i < plane; i++)
                {
                    // The reference rescales in float64 and casts to float32, then normalises in float32.
                    float v = Config.DoRescale ? (float)(pixels[i * 3 + c] * Config.RescaleFactor) : pixels[i * 3 + c];
                    values[offset + i] = Config.DoNormalize ? (v - mean[c]) / std[c] : v;
                }
            }
        }
        var tensor = torch.tensor(values, [images.Count, 3, h, w]);
        if (device is null || device.type == DeviceType.CPU) return tensor;
        var moved = tensor.to(device);
        tensor.Dispose();
        return moved;
    }
}
