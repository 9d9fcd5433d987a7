using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.UNet;

// Checkpoint orchestration: each block runs plainly or, when gradient checkpointing is on, through the checkpoint
// runner with its own and its hooked parameters.
public sealed partial class UNet2DConditionModel
{
    /// <summary>
    /// Gradient (activation) checkpointing of the down, mid and up blocks (default off). When on, and gradients are
    /// enabled, each block runs without keeping its activations, which are recomputed block by block during backward:
    /// less memory for about one more forward pass of time. Gradients are those of the plain path (see
    /// docs/training-at-scale.md); attention maps recorded inside a block stay differentiable and are stored once.
    /// Blocks must be deterministic (no dropout at training time), as in Stable Diffusion.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Down block <paramref name="i"/>: returns its output and appends its skip states to <paramref name="skips"/>.</summary>
    private Tensor RunDownBlock(int i, Tensor h, Tensor emb, Tensor encoderHiddenStates, List<Tensor> skips, BlockCheckpointRunner? checkpoint)
    {
        var block = down_blocks[i];
        if (checkpoint is null)
        {
            var result = block.call(h, emb, encoderHiddenStates);
            skips.AddRange(result.ResidualStates);
            return result.HiddenStates;
        }
        var states = RunCheckpointed(checkpoint, block, h, emb, _downUsesText[i] ? encoderHiddenStates : null, WithHooked(block, $"down_blocks.{i}."));
        skips.AddRange(states);
        return states[^1];
    }

    private Tensor RunMidBlock(Tensor h, Tensor emb, Tensor encoderHiddenStates, BlockCheckpointRunner? checkpoint) =>
        checkpoint is null
            ? mid_block.call(h, emb, encoderHiddenStates)
            : checkpoint.Run(a => [mid_block.call(a[0]!, a[1]!, a[2]!)], [h, emb, encoderHiddenStates], WithHooked(mid_block, "mid_block."))[0];

    /// <summary>Up block <paramref name="i"/> on <paramref name="consumed"/>, the skip states it takes.</summary>
    private Tensor RunUpBlock(int i, Tensor h, List<Tensor> consumed, Tensor emb, Tensor encoderHiddenStates, long[]? upsampleSize, BlockCheckpointRunner? checkpoint)
    {
        var block = up_blocks[i];
        if (checkpoint is null) return block.call(h, consumed, emb, encoderHiddenStates, upsampleSize);
        Tensor?[] inputs = [h, emb, _upUsesText[i] ? encoderHiddenStates : null, .. consumed];
        return checkpoint.Run(a => [block.call(a[0]!, a[3..].Select(t => t!).ToArray(), a[1]!, a[2], upsampleSize)], inputs, WithHooked(block, $"up_blocks.{i}."))[0];
    }

    /// <summary>A block's own parameters and those forward hooks run inside it (e.g. LoRA adapters on its layers).</summary>
    private IEnumerable<Tensor> WithHooked(Module block, string prefix) => block.parameters().Concat(_hooked.Under(prefix));

    void IHookedParameterHost.AttachHookedParameters(string modulePath, IReadOnlyList<Parameter> parameters) => _hooked.Attach(modulePath, parameters);

    void IHookedParameterHost.DetachHookedParameters(string modulePath) => _hooked.Detach(modulePath);

    /// <summary>A down block through the checkpoint: its skip states (the last one is also its output).</summary>
    private static Tensor[] RunCheckpointed(BlockCheckpointRunner checkpoint, UNetDownBlock block, Tensor h, Tensor emb, Tensor? text, IEnumerable<Tensor> parameters)
    {
        bool hiddenIsLastSkip = true;
        var outputs = checkpoint.Run(a =>
        {
            var result = block.call(a[0]!, a[1]!, a[2]);
            hiddenIsLastSkip = result.ResidualStates.Count > 0 && ReferenceEquals(result.HiddenStates, result.ResidualStates[^1]);
            // A tensor returned twice from one autograd function would get two grad_fn slots; return it once.
            return hiddenIsLastSkip ? [.. result.ResidualStates] : [.. result.ResidualStates, result.HiddenStates];
        }, [h, emb, text], parameters);
        if (!hiddenIsLastSkip)
            throw new InvalidOperationException($"{block.GetName()} returned hidden states that are not its last skip state; it cannot be checkpointed.");
        return outputs;
    }
}
