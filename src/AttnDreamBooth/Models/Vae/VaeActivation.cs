using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>The nonlinearities diffusers' <c>get_activation</c> accepts for <c>act_fn</c>.</summary>
internal static class VaeActivation
{
    public static readonly IReadOnlyList<string> Names = ["silu", "swish", "gelu", "relu", "mish"];

    public static bool IsKnown(string name) => Names.Contains(name);

    /// <summary>The activation as a function; parameter-free, so it needs no module (and no state-dict entry).</summary>
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "silu" or "swish" => x => nn.functional.silu(x),
        "gelu" => x => nn.functional.gelu(x),
        "relu" => x => nn.functional.relu(x),
        "mish" => x => x.mul(nn.functional.softplus(x).tanh()),
        _ => throw new ArgumentException($"Unknown activation '{name}'; supported: {string.Join(", ", Names)}.", nameof(name)),
    };
}
