using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// What a CLIP encoder stack needs to know, and all that differs between the text and the vision tower: widths, depth,
/// heads, the MLP activation, the LayerNorm epsilon, and whether attention is causal (text) or bidirectional (vision).
/// Both towers build the same <see cref="ClipEncoder"/> from it, so their layers share one implementation and the
/// transformers module names (<c>encoder.layers.{i}.self_attn.q_proj</c>, <c>….mlp.fc1</c>, …).
/// </summary>
internal sealed record ClipEncoderSpec(int HiddenSize, int IntermediateSize, int NumAttentionHeads, int NumHiddenLayers, string HiddenAct,
    double LayerNormEps, bool Causal)
{
    /// <summary>The text tower's encoder: causal self-attention.</summary>
    public static ClipEncoderSpec Text(ClipTextConfig c) =>
        new(c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads, c.NumHiddenLayers, c.HiddenAct, c.LayerNormEps, Causal: true);

    /// <summary>The vision tower's encoder: every patch attends to every patch.</summary>
    public static ClipEncoderSpec Vision(ClipVisionConfig c) =>
        new(c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads, c.NumHiddenLayers, c.HiddenAct, c.LayerNormEps, Causal: false);

    /// <summary>Checks the encoder's sizes against <see cref="ResourceLimits.Current"/> (the tower checks the rest).</summary>
    public void CheckLimits(string source)
    {
        var l = ResourceLimits.Current;
        l.RequireAtMost(source, "hidden_size", HiddenSize, l.MaxChannels, nameof(l.MaxChannels));
        l.RequireAtMost(source, "intermediate_size", IntermediateSize, 4L * l.MaxChannels, nameof(l.MaxChannels) + " × 4");
        l.RequireAtMost(source, "num_hidden_layers", NumHiddenLayers, l.MaxTextLayers, nameof(l.MaxTextLayers));
        l.RequireAtMost(source, "num_attention_heads", NumAttentionHeads, l.MaxAttentionHeads, nameof(l.MaxAttentionHeads));
    }

    /// <summary>Parameters of the layer stack: four square projections and the MLP per layer (biases and norms are negligible).</summary>
    public double EstimateParameters()
    {
        double h = HiddenSize;
        return NumHiddenLayers * (4 * h * h + 2 * h * IntermediateSize);
    }
}
