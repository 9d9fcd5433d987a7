using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>Tiles equally sized images into one (row-major, a thin white gap between tiles), e.g. for docs and reports.</summary>
public static class ShapesImageGrid
{
    /// <summary>Composes <paramref name="images"/> into rows of <paramref name="columns"/> tiles, each upscaled by the integer <paramref name="scale"/> (nearest neighbour, so pixels stay visible).</summary>
    /// <exception cref="ArgumentException">No images, sizes differ, or columns/scale/gap out of range.</exception>
    public static RgbImage Compose(IReadOnlyList<RgbImage> images, int columns, int scale = 1, int gap = 2)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("A grid needs at least one image.", nameof(images));
        if (columns < 1) throw new ArgumentException($"columns must be positive; got {columns}.", nameof(columns));
        if (scale < 1 || scale > 16) throw new ArgumentException($"scale must be in [1, 16]; got {scale}.", nameof(scale));
        if (gap < 0 || gap > 64) throw new ArgumentException($"gap must be in [0, 64]; got {gap}.", nameof(gap));
        int w = images[0].Width, h = images[0].Height;
        if (images.Any(i => i.Width != w || i.Height != h)) throw new ArgumentException("All grid images must have the same size.", nameof(images));
        int cols = Math.Min(columns, images.Count), rows = (images.Count + cols - 1) / cols;
        int tw = w * scale, th = h * scale;
        int width = cols * tw + (cols - 1) * gap, height = rows * th + (rows - 1) * gap;
        if ((long)width * height > 64L << 20) throw new ArgumentException($"A {width}x{height} grid is too large.", nameof(images));
        var pixels = new byte[width * height * 3];
        Array.Fill(pixels, (byte)255);
        for (int k = 0; k < images.Count; k++)
        {
            int ox = (k % cols) * (tw + gap), oy = (k / cols) * (th + gap);
            var src = images[k].Pixels;
            for (int y = 0; y < th; y++)
                for (int x = 0; x < tw; x++)
                {
                    int s = ((y / scale) * w + x / scale) * 3, d = ((oy + y) * width + ox + x) * 3;
                    pixels[d] = src[s];
                    pixels[d + 1] = src[s + 1];
                    pixels[d + 2] = src[s + 2];
                }
        }
        return new RgbImage(width, height, pixels);
    }
}
