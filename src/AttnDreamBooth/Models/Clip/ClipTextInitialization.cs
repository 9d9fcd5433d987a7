using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// transformers' initialisation of a CLIP text model, for training one from scratch: embeddings N(0, 0.02²), attention
/// and MLP weights with standard deviations scaled by the width and depth, zero biases, unit LayerNorms. TorchSharp's
/// module defaults differ (N(0, 1) embeddings dominate the residual stream, so every position's output is little more
/// than its own token's embedding and the padding positions carry no summary of the prompt).
/// </summary>
internal static class ClipTextInitialization
{
    /// <summary>Re-initialises every parameter of <paramref name="model"/> in place, drawing from libtorch's default
    /// generator (seed it first for reproducible weights).</summary>
    /// <param name="model">The model.</param>
    /// <param name="factor">transformers' <c>initializer_factor</c> (1.0 in every released CLIP).</param>
    public static void Apply(ClipTextModel model, double factor = 1.0)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(factor > 0) || !double.IsFinite(factor)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "must be positive and finite");
        var config = model.Config;
        double width = config.HiddenSize;
        double projection = Math.Pow(width, -0.5) * Math.Pow(2.0 * config.NumHiddenLayers, -0.5) * factor;
        double output = Math.Pow(width, -0.5) * factor;
        double fc1 = Math.Pow(2.0 * width, -0.5) * factor;
        using var _ = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            double? std = name switch
            {
                _ when name.EndsWith("token_embedding.weight", StringComparison.Ordinal) => 0.02 * factor,
                _ when name.EndsWith("position_embedding.weight", StringComparison.Ordinal) => 0.02 * factor,
                _ when name.EndsWith("_proj.weight", StringComparison.Ordinal) && name.Contains(".self_attn.", StringComparison.Ordinal)
                    => name.EndsWith("out_proj.weight", StringComparison.Ordinal) ? output : projection,
                _ when name.EndsWith("mlp.fc1.weight", StringComparison.Ordinal) => fc1,
                _ when name.EndsWith("mlp.fc2.weight", StringComparison.Ordinal) => projection,
                _ => null,
            };
            if (std is double s) parameter.normal_(0, s);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) parameter.zero_();
            else if (name.Contains("layer_norm", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal)) parameter.fill_(Kept(1.0));
            else throw new InvalidOperationException($"No initialisation rule for the CLIP text parameter '{name}'.");
        }
    }
}
