using TorchSharp;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The MLP activations of CLIP towers.</summary>
internal static class ClipVisionActivation
{
    public static bool IsSupported(string name) => name is "quick_gelu" or "gelu";

    public static torch.Tensor Apply(string name, torch.Tensor x) => name switch
    {
        // OpenAI CLIP's sigmoid approximation of GELU.
        "quick_gelu" => x * torch.sigmoid(x * 1.702),
        "gelu" => torch.nn.functional.gelu(x),
        _ => throw new NotSupportedException($"Activation '{name}' is not supported."),
    };
}
