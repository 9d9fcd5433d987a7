using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.UNet;

/// <summary>What a down block returns: its final hidden states and every state it hands to the up path (one per
/// resnet, plus the downsampler's output), in order.</summary>
/// <param name="HiddenStates">The block's output (after its downsampler, if any).</param>
/// <param name="ResidualStates">The skip-connection states in execution order.</param>
internal sealed record DownBlockOutput(Tensor HiddenStates, IReadOnlyList<Tensor> ResidualStates);

/// <summary>A down block: <c>(hidden_states, temb, encoder_hidden_states)</c> → <see cref="DownBlockOutput"/>.</summary>
internal abstract class UNetDownBlock : Module<Tensor, Tensor, Tensor?, DownBlockOutput>
{
    /// <summary>Creates the block.</summary>
    protected UNetDownBlock(string name) : base(name) { }

    /// <summary>True when the block ends with a stride-2 downsampler.</summary>
    public abstract bool HasDownsampler { get; }
}

/// <summary>An up block: <c>(hidden_states, skip states, temb, encoder_hidden_states, upsample size)</c> → hidden states.
/// The skip states are consumed from the END of the list, as diffusers pops them.</summary>
internal abstract class UNetUpBlock : Module<Tensor, IReadOnlyList<Tensor>, Tensor, Tensor?, long[]?, Tensor>
{
    /// <summary>Creates the block.</summary>
    protected UNetUpBlock(string name) : base(name) { }

    /// <summary>Number of resnets, i.e. how many skip states the block consumes.</summary>
    public abstract int ResnetCount { get; }

    /// <summary>True when the block ends with a x2 upsampler.</summary>
    public abstract bool HasUpsampler { get; }
}
