using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.UNet;

/// <summary>The timestep MLP (diffusers' <c>TimestepEmbedding</c>): <c>linear_1</c> → the U-Net's <c>act_fn</c> → <c>linear_2</c>.</summary>
internal sealed class TimestepEmbedding : Module<Tensor, Tensor>
{
    private readonly Linear linear_1;
    private readonly Linear linear_2;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>Creates the MLP with <paramref name="activation"/> between the layers (SiLU when null).</summary>
    public TimestepEmbedding(int inChannels, int timeEmbedDim, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(TimestepEmbedding))
    {
        _activation = activation ?? (x => functional.silu(x));
        linear_1 = Linear(inChannels, timeEmbedDim, device: device);
        linear_2 = Linear(timeEmbedDim, timeEmbedDim, device: device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor sample)
    {
        using var scope = NewDisposeScope();
        return linear_2.call(_activation(linear_1.call(sample))).MoveToOuterDisposeScope();
    }
}
