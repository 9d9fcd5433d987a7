using AttnDreamBooth.Imaging;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>Turns RGB images into the VAE's input: float32 [B, 3, H, W] in [-1, 1].</summary>
public static class ImageBatch
{
    /// <summary>Stacks <paramref name="images"/> (all the same size) into one tensor on <paramref name="device"/>.</summary>
    /// <exception cref="ArgumentException">The list is empty or the images differ in size.</exception>
    public static torch.Tensor ToTensor(IReadOnlyList<RgbImage> images, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("At least one image is needed.", nameof(images));
        int w = images[0].Width, h = images[0].Height;
        var bytes = new byte[images.Count * w * h * 3];
        for (int i = 0; i < images.Count; i++)
        {
            var image = images[i] ?? throw new ArgumentException($"images[{i}] is null.", nameof(images));
            if (image.Width != w || image.Height != h)
                throw new ArgumentException($"images[{i}] is {image.Width}x{image.Height}; the batch is {w}x{h}.", nameof(images));
            image.Pixels.CopyTo(bytes, i * w * h * 3);
        }
        using var scope = torch.NewDisposeScope();
        var t = torch.tensor(bytes, [images.Count, h, w, 3]).permute(0, 3, 1, 2).to_type(torch.float32).div_(Kept(127.5)).sub_(Kept(1.0)).contiguous();
        if (device is not null) t = t.to(device);
        return t.MoveToOuterDisposeScope();
    }
}
