using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// Checks a CLIP vision config against <see cref="ResourceLimits.Current"/> before the tower is built, as
/// <c>ModelConfigLimits</c> does for the Stable Diffusion networks: widths, layer and head counts, the image and patch
/// sizes (the patch grid is a position table), and the parameter count estimated from them.
/// </summary>
internal static class ClipVisionLimits
{
    public static void Check(ClipVisionConfig c, string source)
    {
        var l = ResourceLimits.Current;
        ClipEncoderSpec.Vision(c).CheckLimits(source);
        l.RequireAtMost(source, "num_channels", c.NumChannels, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "image_size", c.ImageSize, l.MaxSampleSize, nameof(l.MaxSampleSize));
        l.RequireAtMost(source, "image_size", Positions(c), l.MaxPositionEmbeddings, nameof(l.MaxPositionEmbeddings) + " (patches + 1)");
        l.RequireParameters(source, "CLIP vision tower", Estimate(c));
    }

    /// <summary>Patch embedding, positions and encoder layers (biases and norms are negligible).</summary>
    public static double Estimate(ClipVisionConfig c)
    {
        double h = c.HiddenSize;
        return (double)c.NumChannels * c.PatchSize * c.PatchSize * h + Positions(c) * h + ClipEncoderSpec.Vision(c).EstimateParameters();
    }

    /// <summary>The vision tower plus both projection heads.</summary>
    public static double Estimate(ClipModelConfig c) => Estimate(c.Vision) + ((double)c.Vision.HiddenSize + c.TextHiddenSize) * c.ProjectionDim;

    private static long Positions(ClipVisionConfig c)
    {
        long side = c.PatchSize > 0 ? c.ImageSize / c.PatchSize : 0;
        return side * side + 1;
    }
}
