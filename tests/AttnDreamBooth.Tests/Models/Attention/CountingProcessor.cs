using TorchSharp;

namespace AttnDreamBooth.Tests.Models.Attention;

/// <summary>A processor that delegates to the default one and counts the layers it served (with their grid size).</summary>
internal sealed class CountingProcessor : AttnDreamBooth.Models.Attention.IAttentionProcessor
{
    public List<(string Path, int Height, int Width)> Calls { get; } = [];

    public torch.Tensor Process(AttnDreamBooth.Models.Attention.Attention attn, torch.Tensor hiddenStates, torch.Tensor? encoderHiddenStates, AttnDreamBooth.Models.Attention.AttentionContext context)
    {
        Calls.Add((attn.Path, context.Height, context.Width));
        return AttnDreamBooth.Models.Attention.ScaledDotProductAttentionProcessor.Instance.Process(attn, hiddenStates, encoderHiddenStates, context);
    }
}
