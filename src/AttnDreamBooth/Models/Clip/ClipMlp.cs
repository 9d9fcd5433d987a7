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

    public ClipMlp(ClipEncoderSpec spec, Device? device) : base("mlp")
    {
        fc1 = nn.Linear(spec.HiddenSize, spec.IntermediateSize, hasBias: true, device: device);
        activation = new ClipActivation(spec.HiddenAct);
        fc2 = nn.Linear(spec.IntermediateSize, spec.HiddenSize, hasBias: true, device: device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.call(activation.call(fc1.call(x))).MoveToOuterDisposeScope();
    }
}
