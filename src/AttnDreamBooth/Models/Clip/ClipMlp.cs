using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The feed-forward block of a CLIP encoder layer (<c>mlp</c>: <c>fc1</c> → activation → <c>fc2</c>).</summary>
internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly ClipActivation activation;
    private readonly Linear fc2;

    public ClipMlp(ClipTextConfig config, Device? device) : base("mlp")
    {
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: true, device: device);
        activation = new ClipActivation(config.HiddenAct);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: true, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.call(activation.call(fc1.call(x))).MoveToOuterDisposeScope();
    }
}
