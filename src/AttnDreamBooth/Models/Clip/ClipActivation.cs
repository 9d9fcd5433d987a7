using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The MLP activations CLIP text configs name in <c>hidden_act</c>.</summary>
internal sealed class ClipActivation : nn.Module<Tensor, Tensor>
{
    public static readonly string[] Known = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu"];

    private readonly string _kind;

    public ClipActivation(string kind) : base(kind)
    {
        if (!IsKnown(kind)) throw new ArgumentException($"Unsupported activation '{kind}' (known: {string.Join(", ", Known)}).", nameof(kind));
        _kind = kind;
    }

    public static bool IsKnown(string kind) => Known.Contains(kind, StringComparer.Ordinal);

    public override Tensor forward(Tensor x) => _kind switch
    {
        // OpenAI CLIP's sigmoid approximation of GELU.
        "quick_gelu" => x * torch.sigmoid(x * 1.702),
        "gelu" => nn.functional.gelu(x),
        "relu" => nn.functional.relu(x),
        _ => TanhGelu(x),
    };

    private static Tensor TanhGelu(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var inner = (x + x.pow(3) * 0.044715) * Math.Sqrt(2.0 / Math.PI);
        return (x * 0.5 * (torch.tanh(inner) + 1.0)).MoveToOuterDisposeScope();
    }
}
