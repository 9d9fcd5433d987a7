using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The object-weighted U-Net loss of <see cref="PretrainingRecipe.ObjectLossWeight"/>: object coverage on the latent grid and the weighted per-image error.</summary>
internal static class ObjectLossWeighting
{
    /// <summary>The union (per-pixel maximum) of <paramref name="masks"/> averaged over each <paramref name="factor"/>² block:
    /// m ∈ [0, 1] per latent pixel, row-major, (<paramref name="imageSize"/> / <paramref name="factor"/>)² values.</summary>
    /// <exception cref="ArgumentException">A mask is not <paramref name="imageSize"/> pixels a side, or the size is not a multiple of the factor.</exception>
    public static float[] LatentCoverage(IReadOnlyList<ObjectMask> masks, int imageSize, int factor)
    {
        ArgumentNullException.ThrowIfNull(masks);
        ArgumentOutOfRangeException.ThrowIfLessThan(factor, 1);
        if (imageSize <= 0 || imageSize % factor != 0)
            throw new ArgumentException($"The image size {imageSize} is not a positive multiple of the latent factor {factor}.", nameof(imageSize));
        var union = new byte[imageSize * imageSize];
        for (int k = 0; k < masks.Count; k++)
        {
            var mask = masks[k] ?? throw new ArgumentException($"masks[{k}] is null.", nameof(masks));
            if (mask.Width != imageSize || mask.Height != imageSize)
                throw new ArgumentException($"masks[{k}] is {mask.Width}x{mask.Height}; the image is {imageSize}x{imageSize}.", nameof(masks));
            for (int i = 0; i < union.Length; i++) union[i] = Math.Max(union[i], mask.Coverage[i]);
        }
        int side = imageSize / factor;
        double full = 255.0 * factor * factor;
        var coverage = new float[side * side];
        for (int ly = 0; ly < side; ly++)
            for (int lx = 0; lx < side; lx++)
            {
                int sum = 0;
                for (int y = ly * factor; y < (ly + 1) * factor; y++)
                    for (int x = lx * factor; x < (lx + 1) * factor; x++)
                        sum += union[y * imageSize + x];
                coverage[ly * side + lx] = (float)(sum / full);
            }
        return coverage;
    }

    /// <summary>The latent coverage of every example as float32 [B, 1, h, w], each value replaced by the maximum over the
    /// (2·<paramref name="dilation"/> + 1)² latent pixels around it when <paramref name="dilation"/> &gt; 0.</summary>
    /// <exception cref="InvalidOperationException">An example carries no masks.</exception>
    public static Tensor CoverageTensor(IReadOnlyList<PretrainingExample> examples, int imageSize, int factor, int dilation = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(dilation);
        var coverage = Coverage(examples, imageSize, factor);
        if (dilation == 0) return coverage;
        using (coverage)
        {
            // Max pooling pads with −∞, so pixels at the border see only the image.
            return nn.functional.max_pool2d(coverage, 2 * dilation + 1, stride: 1, padding: dilation);
        }
    }

    private static Tensor Coverage(IReadOnlyList<PretrainingExample> examples, int imageSize, int factor)
    {
        int side = imageSize / factor;
        var values = new float[examples.Count * side * side];
        for (int i = 0; i < examples.Count; i++)
        {
            var masks = examples[i].Masks ?? throw new InvalidOperationException(
                $"Example {i} of the batch carries no object masks, which the recipe's object_loss_weight needs; the source claims to provide them.");
            LatentCoverage(masks, imageSize, factor).CopyTo(values, i * side * side);
        }
        return tensor(values, [examples.Count, 1, side, side]);
    }

    /// <summary>Per image: mean(w·(prediction − target)²) / mean(w) with w = 1 + <paramref name="weight"/>·coverage broadcast over the channels; [B].</summary>
    public static Tensor PerImageLoss(Tensor prediction, Tensor target, Tensor coverage, double weight)
    {
        using var scope = NewDisposeScope();
        var w = coverage.to_type(prediction.dtype).mul(Kept(weight)).add(Kept(1), One);
        var err = prediction.sub(target).pow(Kept(2));
        return err.mul(w).mean([1, 2, 3]).div(w.mean([1, 2, 3])).MoveToOuterDisposeScope();
    }
}
