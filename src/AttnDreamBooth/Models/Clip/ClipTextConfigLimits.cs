using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// Checks a CLIP text config against <see cref="ResourceLimits.Current"/> before a module is built, including the parameter
/// count estimated from the config. Runs first in the config's validation, so an absurd value (or a zero divisor such
/// as <c>norm_num_groups: 0</c>) is a <see cref="ModelConfigException"/>, never an allocation or a native crash.
/// </summary>
internal static class ClipTextConfigLimits
{
    public static void Check(ClipTextConfig c, string source)
    {
        var l = ResourceLimits.Current;
        l.RequireAtMost(source, "vocab_size", c.VocabSize, l.MaxVocabSize, nameof(l.MaxVocabSize));
        ClipEncoderSpec.Text(c).CheckLimits(source);
        l.RequireAtMost(source, "projection_dim", c.ProjectionDim, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "max_position_embeddings", c.MaxPositionEmbeddings, l.MaxPositionEmbeddings, nameof(l.MaxPositionEmbeddings));
        l.RequireParameters(source, "text encoder", Estimate(c));
    }

    internal static double Estimate(ClipTextConfig c)
    {
        double h = c.HiddenSize;
        return (double)c.VocabSize * h + (double)c.MaxPositionEmbeddings * h + ClipEncoderSpec.Text(c).EstimateParameters();
    }
}
