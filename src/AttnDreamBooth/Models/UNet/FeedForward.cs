using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.UNet;

/// <summary>The transformer feed-forward (diffusers' <c>FeedForward</c> with GEGLU): <c>net.0</c> = GEGLU(dim → 4·dim),
/// <c>net.1</c> = dropout, <c>net.2</c> = Linear(4·dim → dim).</summary>
internal sealed class FeedForward : Module<Tensor, Tensor>
{
    private readonly ModuleList<Module<Tensor, Tensor>> net;

    /// <summary>Creates the feed-forward block.</summary>
    public FeedForward(int dim, int mult = 4, double dropout = 0.0, Device? device = null) : base(nameof(FeedForward))
    {
        int inner = dim * mult;
        net = new ModuleList<Module<Tensor, Tensor>>(new GEGLU(dim, inner, device), Dropout(dropout), Linear(inner, dim, device: device));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var layer in net) h = layer.call(h);
        return h.MoveToOuterDisposeScope();
    }
}
