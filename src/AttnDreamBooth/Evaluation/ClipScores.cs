using TorchSharp;

namespace AttnDreamBooth.Evaluation;

/// <summary>
/// The Textual Inversion CLIP evaluation arithmetic (rinongal/textual_inversion <c>evaluation/clip_eval.py</c>), as used by
/// DreamBooth-style papers incl. AttnDreamBooth: embeddings divided by their own L2 norm; identity = mean over all
/// (source, generated) pairs of the image-image cosine; text = mean over generated images of the cosine with that
/// image's prompt (identifier token removed).
/// </summary>
internal static class ClipScores
{
    /// <summary>Cosines [sources, generated] of normalised embeddings (<c>S @ G^T</c>).</summary>
    public static torch.Tensor ImageImageCosine(torch.Tensor sourceNormalized, torch.Tensor generatedNormalized) =>
        sourceNormalized.mm(generatedNormalized.t());

    /// <summary>The identity score: the mean of <see cref="ImageImageCosine"/>.</summary>
    public static double Identity(torch.Tensor sourceNormalized, torch.Tensor generatedNormalized)
    {
        using var cosine = ImageImageCosine(sourceNormalized, generatedNormalized);
        using var mean = cosine.mean();
        return mean.to_type(torch.float64).item<double>();
    }

    /// <summary>Per generated image j, the cosine with its prompt: <c>T[promptIndex[j]] · I[j]</c> (both normalised).</summary>
    /// <param name="textNormalized">[P, d].</param>
    /// <param name="generatedNormalized">[N, d].</param>
    /// <param name="promptIndex">[N] int64: the prompt row of each generated image.</param>
    public static torch.Tensor TextPairs(torch.Tensor textNormalized, torch.Tensor generatedNormalized, torch.Tensor promptIndex)
    {
        using var scope = torch.NewDisposeScope();
        var prompts = textNormalized.index_select(0, promptIndex.to(textNormalized.device));
        return prompts.mul(generatedNormalized).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Removes the identifier token from a prompt exactly as the protocol does: a plain string replace
    /// (<c>"a sks dog"</c> → <c>"a  dog"</c>; the tokenizer collapses the doubled space).</summary>
    public static string RemoveIdentifier(string prompt, string identifier)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        return prompt.Replace(identifier, "", StringComparison.Ordinal);
    }
}
