using TorchSharp;

namespace AttnDreamBooth.Models.Clip;

/// <summary>What <see cref="ClipTextModel.Forward"/> returns.</summary>
/// <param name="LastHiddenState">[B, T, hidden] after the final LayerNorm: Stable Diffusion's <c>encoder_hidden_states</c>.</param>
/// <param name="PoolerOutput">[B, hidden]: <see cref="LastHiddenState"/> at each row's end token.</param>
/// <param name="HiddenStates">When requested: num_hidden_layers + 1 tensors [B, T, hidden] — the embeddings (token +
/// position), then the output of every layer, all before the final LayerNorm ("clip skip" picks from these).</param>
public sealed record ClipTextOutput(torch.Tensor LastHiddenState, torch.Tensor PoolerOutput, IReadOnlyList<torch.Tensor>? HiddenStates) : IDisposable
{
    /// <summary>Disposes every tensor of the output.</summary>
    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
        if (HiddenStates is null) return;
        foreach (var t in HiddenStates) t.Dispose();
    }
}
