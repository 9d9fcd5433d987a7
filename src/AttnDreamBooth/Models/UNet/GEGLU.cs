using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.UNet;

/// <summary>Gated GELU (diffusers' <c>GEGLU</c>): <c>proj</c> gives <c>[..., 2 * inner]</c>; output
/// <c>hidden * gelu(gate)</c> with the two halves (hidden first) and the exact erf GELU.</summary>
internal sealed class GEGLU : Module<Tensor, Tensor>
{
    private readonly Linear proj;

    /// <summary>Creates the gate.</summary>
    public GEGLU(int dimIn, int dimOut, Device? device = null) : base(nameof(GEGLU))
    {
        proj = Linear(dimIn, dimOut * 2, device: device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var halves = proj.call(input).chunk(2, -1);
        return halves[0].mul(functional.gelu(halves[1])).MoveToOuterDisposeScope();
    }
}
