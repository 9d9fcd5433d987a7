using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The feed-forward block of a CLIP encoder layer (<c>mlp</c>: <c>fc1</c> → activation → <c>fc2</c>).</summary>
internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly Func<Tensor, Tensor> _activation;

    public ClipMlp(ClipEncoderSpec spec, Device? device) : base("mlp")
    {
        fc1 = nn.Linear(spec.HiddenSize, spec.IntermediateSize, hasBias: true, device: device);
        fc2 = nn.Linear(spec.IntermediateSize, spec.HiddenSize, hasBias: true, device: device);
        _activation = Activations.Get(spec.HiddenAct, ActivationNaming.Transformers, "hidden_act");
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.call(_activation(fc1.call(x))).MoveToOuterDisposeScope();
    }
}
