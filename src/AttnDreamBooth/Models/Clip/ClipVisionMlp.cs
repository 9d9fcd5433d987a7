using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers <c>CLIPMLP</c>: fc1 → activation → fc2.</summary>
internal sealed class ClipVisionMlp : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    private readonly Linear fc1;
    private readonly Linear fc2;
#pragma warning restore IDE1006
    private readonly string _activation;

    /// <summary>Creates the MLP with parameters on <paramref name="device"/>.</summary>
    public ClipVisionMlp(ClipVisionConfig config, torch.Device? device = null) : base("mlp")
    {
        fc1 = torch.nn.Linear(config.HiddenSize, config.IntermediateSize, device: device);
        fc2 = torch.nn.Linear(config.IntermediateSize, config.HiddenSize, device: device);
        _activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>Applies the MLP to [..., C].</summary>
    public override torch.Tensor forward(torch.Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.call(ClipVisionActivation.Apply(_activation, fc1.call(x))).MoveToOuterDisposeScope();
    }
}
