using TorchSharp;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// The text side of a CLIP model as the scores need it: the pooled output (<c>text_model(...).pooler_output</c>, the
/// final-LayerNorm state at the first end-of-text token) of prompts tokenized with padding to 77. Implemented by an
/// adapter over the library's CLIP text encoder and tokenizer, loaded from the same CLIP folder.
/// </summary>
internal interface IClipTextTower : IDisposable
{
    /// <summary>The pooled output <c>[prompts, text hidden]</c> on <paramref name="device"/>.</summary>
    torch.Tensor EncodePooled(IReadOnlyList<string> prompts, torch.Device device);
}
