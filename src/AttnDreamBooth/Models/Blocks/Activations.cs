using AttnDreamBooth.IO;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>Whose activation names a config is written in: diffusers' <c>get_activation</c> (<c>act_fn</c> of the
/// U-Net and VAE) or transformers' <c>ACT2FN</c> (<c>hidden_act</c> of the CLIP towers).</summary>
internal enum ActivationNaming
{
    /// <summary>diffusers' <c>get_activation</c>.</summary>
    Diffusers,

    /// <summary>transformers' <c>ACT2FN</c>.</summary>
    Transformers,
}

/// <summary>
/// The one table of nonlinearities the models accept by name. Each entry says which library's configs may name it (a
/// name this table does not list, or lists for the other library only, is refused as the reference would refuse it or
/// as this library does not implement it). The functions are parameter-free, so they need no module and no state-dict
/// entry.
/// </summary>
internal static class Activations
{
    private sealed record Entry(Func<Tensor, Tensor> Apply, bool Diffusers, bool Transformers);

    private static readonly IReadOnlyDictionary<string, Entry> Table = new Dictionary<string, Entry>(StringComparer.Ordinal)
    {
        ["silu"] = new(x => nn.functional.silu(x), Diffusers: true, Transformers: true),
        ["swish"] = new(x => nn.functional.silu(x), Diffusers: true, Transformers: true),
        ["gelu"] = new(x => nn.functional.gelu(x), Diffusers: true, Transformers: true),
        ["relu"] = new(x => nn.functional.relu(x), Diffusers: true, Transformers: true),
        ["mish"] = new(x => x.mul(Softplus(x).tanh()), Diffusers: true, Transformers: true),
        // OpenAI CLIP's sigmoid approximation of GELU.
        ["quick_gelu"] = new(x => x * torch.sigmoid(x.mul(Kept(1.702))), Diffusers: false, Transformers: true),
        ["gelu_new"] = new(TanhGelu, Diffusers: false, Transformers: true),
        ["gelu_pytorch_tanh"] = new(TanhGelu, Diffusers: false, Transformers: true),
    };

    /// <summary>The names configs of <paramref name="naming"/> may use, in table order.</summary>
    public static IReadOnlyList<string> Names(ActivationNaming naming) =>
        Table.Where(e => naming == ActivationNaming.Diffusers ? e.Value.Diffusers : e.Value.Transformers).Select(e => e.Key).ToArray();

    /// <summary>Whether <paramref name="name"/> is an activation configs of <paramref name="naming"/> may use.</summary>
    public static bool IsSupported(string? name, ActivationNaming naming) =>
        name is not null && Table.TryGetValue(name, out var entry) && (naming == ActivationNaming.Diffusers ? entry.Diffusers : entry.Transformers);

    /// <summary>Refuses an activation name that configs of <paramref name="naming"/> may not use.</summary>
    /// <param name="name">The configured name.</param>
    /// <param name="naming">Whose names the config uses.</param>
    /// <param name="source">The config file, or a placeholder such as <c>&lt;ClipTextConfig&gt;</c> for a config built in code.</param>
    /// <param name="field">The config key, e.g. <c>act_fn</c> or <c>hidden_act</c>.</param>
    /// <exception cref="ModelConfigException">The name is not supported; the exception names <paramref name="field"/>.</exception>
    public static void Require(string? name, ActivationNaming naming, string source, string field)
    {
        if (!IsSupported(name, naming))
            throw new ModelConfigException(source, field, $"'{name}' is not a supported activation (supported: {string.Join(", ", Names(naming))})");
    }

    /// <summary>The activation <paramref name="name"/> as a function.</summary>
    /// <exception cref="ModelConfigException">The name is not supported (see <see cref="Require"/>).</exception>
    public static Func<Tensor, Tensor> Get(string name, ActivationNaming naming, string field)
    {
        Require(name, naming, $"<{naming} config>", field);
        return Table[name].Apply;
    }

    // PyTorch's softplus (beta 1, threshold 20) from operations that take kept scalars (TorchSharp's own passes
    // temporaries): the input itself above the threshold, clamped below it so exp cannot overflow into the gradient.
    private static Tensor Softplus(Tensor x) => where(x.gt(Kept(20)), x, x.clamp_max(Kept(20)).exp().log1p());

    private static Tensor TanhGelu(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var inner = x.add(x.pow(Kept(3)).mul(Kept(0.044715)), One).mul(Kept(Math.Sqrt(2.0 / Math.PI)));
        return (x.mul(Kept(0.5)) * (torch.tanh(inner).add(Kept(1.0), One))).MoveToOuterDisposeScope();
    }
}
