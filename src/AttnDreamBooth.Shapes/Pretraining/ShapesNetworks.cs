using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using TorchSharp;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// The three networks of a Shapes model in float32, initialised from a seed (so a fresh run is reproducible) and
/// convertible to and from one flat tensor dictionary with the prefixes <c>vae.</c>, <c>text_encoder.</c> and
/// <c>unet.</c> (the checkpoint layout; the names after the prefix are the diffusers/transformers weight names).
/// </summary>
public sealed class ShapesNetworks : IDisposable
{
    /// <summary>Prefix of the VAE's tensors.</summary>
    public const string VaePrefix = "vae.";

    /// <summary>Prefix of the text encoder's tensors.</summary>
    public const string TextEncoderPrefix = "text_encoder.";

    /// <summary>Prefix of the U-Net's tensors.</summary>
    public const string UNetPrefix = "unet.";

    /// <summary>Builds freshly initialised networks: the VAE from <paramref name="seed"/>, the text encoder and U-Net from
    /// a derived seed, so the initial weights do not depend on construction order. The seeds go into libtorch's
    /// process-wide generator (TorchSharp's modules take no generator), so other threads drawing random numbers during
    /// construction change the initial weights.</summary>
    public ShapesNetworks(ShapesModelArchitecture architecture, long seed)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        architecture.Validate();
        Architecture = architecture;
        torch.random.manual_seed(seed);
        Vae = new AutoencoderKL(architecture.Vae);
        torch.random.manual_seed(unchecked(seed * 6364136223846793005L + 1442695040888963407L));
        TextEncoder = new ClipTextModel(architecture.TextEncoder);
        TextEncoder.InitializeWeights();
        UNet = new UNet2DConditionModel(architecture.UNet);
    }

    /// <summary>The architecture.</summary>
    public ShapesModelArchitecture Architecture { get; }

    /// <summary>The VAE.</summary>
    public AutoencoderKL Vae { get; }

    /// <summary>The text encoder.</summary>
    public ClipTextModel TextEncoder { get; }

    /// <summary>The U-Net.</summary>
    public UNet2DConditionModel UNet { get; }

    /// <summary>The named parameters of one network, with its prefix.</summary>
    public static IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> NamedParameters(torch.nn.Module module, string prefix) =>
        module.named_parameters().Select(p => (prefix + p.name, p.parameter));

    /// <summary>Every tensor of the networks (parameters and buffers) under its prefixed name (live tensors, not copies).</summary>
    public Dictionary<string, torch.Tensor> StateTensors(bool includeVae = true, bool includeDenoiser = true)
    {
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        void Add(torch.nn.Module module, string prefix)
        {
            foreach (var (name, tensor) in module.state_dict()) result[prefix + name] = tensor;
        }
        if (includeVae) Add(Vae, VaePrefix);
        if (includeDenoiser)
        {
            Add(TextEncoder, TextEncoderPrefix);
            Add(UNet, UNetPrefix);
        }
        return result;
    }

    /// <summary>Copies stored tensors into the networks: every tensor of a network whose prefix appears must be present with its shape.</summary>
    /// <exception cref="ArgumentException">A tensor is missing or has the wrong shape.</exception>
    public void Load(IReadOnlyDictionary<string, torch.Tensor> tensors, bool includeVae = true, bool includeDenoiser = true)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var _ = torch.no_grad();
        foreach (var (name, target) in StateTensors(includeVae, includeDenoiser))
        {
            if (!tensors.TryGetValue(name, out var source)) throw new ArgumentException($"The checkpoint lacks '{name}'.", nameof(tensors));
            if (!source.shape.SequenceEqual(target.shape))
                throw new ArgumentException($"'{name}' is [{string.Join(", ", source.shape)}] in the checkpoint, [{string.Join(", ", target.shape)}] in the model.", nameof(tensors));
            target.copy_(source);
        }
    }

    /// <summary>Parameter counts of the VAE, text encoder and U-Net.</summary>
    public (long Vae, long TextEncoder, long UNet) ParameterCounts() =>
        (Count(Vae), Count(TextEncoder), Count(UNet));

    private static long Count(torch.nn.Module m) => m.parameters().Sum(p => p.NumberOfElements);

    /// <inheritdoc />
    public void Dispose()
    {
        Vae.Dispose();
        TextEncoder.Dispose();
        UNet.Dispose();
    }
}
