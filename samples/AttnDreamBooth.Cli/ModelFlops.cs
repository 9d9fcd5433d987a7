using System.Text.RegularExpressions;

namespace AttnDreamBooth.Cli;

/// <summary>
/// Forward-pass floating-point operations of a diffusers U-Net and a CLIP text encoder, counted from their weights'
/// names and shapes: every convolution and linear layer costs 2 × (weight elements) per output position, at the latent
/// size of the block its name puts it in; self-attention adds 2 × 2 × pixels² × inner width (QKᵀ and AV), cross-attention
/// 2 × 2 × pixels × text length × inner width. Normalizations and activations are left out (a few per cent).
/// </summary>
internal static partial class ModelFlops
{
    /// <summary>CLIP's context length in Stable Diffusion.</summary>
    public const int TextLength = 77;

    /// <summary>One sample's U-Net forward at a latent of <paramref name="latentHeight"/> × <paramref name="latentWidth"/>.</summary>
    /// <param name="weights">Parameter names (diffusers module paths) and shapes.</param>
    /// <param name="blockCount">The number of down blocks (the length of <c>block_out_channels</c>).</param>
    public static double UNetForward(IEnumerable<(string Name, long[] Shape)> weights, int blockCount, int latentHeight, int latentWidth, int textLength = TextLength)
    {
        double flops = 0;
        foreach (var (name, shape) in weights)
        {
            if (!name.EndsWith(".weight", StringComparison.Ordinal) || shape.Length is not (2 or 4)) continue;
            double elements = shape.Aggregate(1.0, (a, d) => a * d);
            // The time embedding and each resnet's projection of it run once per sample, not per pixel.
            if (name.StartsWith("time_embedding.", StringComparison.Ordinal) || name.Contains(".time_emb_proj.", StringComparison.Ordinal))
            {
                flops += 2 * elements;
                continue;
            }
            int level = Level(name, blockCount);
            double pixels = (double)Halve(latentHeight, level) * Halve(latentWidth, level);
            bool textSide = CrossKeyValue().IsMatch(name);
            flops += 2 * elements * (textSide ? textLength : pixels);
            if (name.EndsWith(".attn1.to_q.weight", StringComparison.Ordinal)) flops += 4 * pixels * pixels * shape[0];
            else if (name.EndsWith(".attn2.to_q.weight", StringComparison.Ordinal)) flops += 4 * pixels * textLength * shape[0];
        }
        return flops;
    }

    /// <summary>Attention scores (softmax entries) of one sample's U-Net forward: heads × pixels² per self-attention
    /// layer, heads × pixels × text length per cross-attention layer. Their softmax and memory traffic cost far more
    /// than the FLOPs above say when heads are narrow, as in small models.</summary>
    /// <param name="headsPerLevel">Attention heads of the blocks at each level (diffusers' per-block head counts).</param>
    public static double UNetAttentionScores(IEnumerable<(string Name, long[] Shape)> weights, int blockCount, int latentHeight, int latentWidth,
        IReadOnlyList<int> headsPerLevel, int textLength = TextLength)
    {
        double scores = 0;
        foreach (var (name, _) in weights)
        {
            bool self = name.EndsWith(".attn1.to_q.weight", StringComparison.Ordinal);
            if (!self && !name.EndsWith(".attn2.to_q.weight", StringComparison.Ordinal)) continue;
            int level = Level(name, blockCount);
            double pixels = (double)Halve(latentHeight, level) * Halve(latentWidth, level);
            scores += headsPerLevel[Math.Min(level, headsPerLevel.Count - 1)] * pixels * (self ? pixels : textLength);
        }
        return scores;
    }

    /// <summary>One prompt's text-encoder forward: every linear layer at every token (embedding tables are lookups).</summary>
    public static double TextEncoderForward(IEnumerable<(string Name, long[] Shape)> weights, int textLength = TextLength) =>
        weights.Where(w => w.Name.EndsWith(".weight", StringComparison.Ordinal) && w.Shape.Length == 2 && !w.Name.Contains("embedding", StringComparison.Ordinal))
            .Sum(w => 2.0 * w.Shape[0] * w.Shape[1] * textLength);

    /// <summary>How many times the latent has been halved where the layer runs: down block i at i (its downsampler
    /// writes i + 1), the mid block at the bottom, up block i at blockCount − 1 − i (its upsampler's convolution one
    /// level up).</summary>
    internal static int Level(string name, int blockCount)
    {
        var match = BlockPath().Match(name);
        if (match.Success)
        {
            int i = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            bool resampler = match.Groups[3].Value is "downsamplers" or "upsamplers";
            return match.Groups[1].Value == "down_blocks" ? i + (resampler ? 1 : 0) : blockCount - 1 - i - (resampler ? 1 : 0);
        }
        return name.StartsWith("mid_block.", StringComparison.Ordinal) ? blockCount - 1 : 0;
    }

    // A stride-2 convolution with padding 1 rounds up.
    private static int Halve(int size, int times)
    {
        for (int i = 0; i < times; i++) size = (size + 1) / 2;
        return size;
    }

    [GeneratedRegex(@"^(down_blocks|up_blocks)\.(\d+)\.(\w+)\.")]
    private static partial Regex BlockPath();

    [GeneratedRegex(@"\.attn2\.to_(k|v)\.weight$")]
    private static partial Regex CrossKeyValue();
}
