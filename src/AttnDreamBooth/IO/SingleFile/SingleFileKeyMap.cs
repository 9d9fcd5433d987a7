using System.Globalization;

namespace AttnDreamBooth.IO.SingleFile;

/// <summary>What <see cref="SingleFileKeyMap.Resolve"/> found for one original key.</summary>
internal enum SingleFileKeyKind
{
    /// <summary>A weight of one of the components in the architecture.</summary>
    Mapped,

    /// <summary>A key that only original files hold and no diffusers component needs (DDPM buffers, position_ids,
    /// OpenCLIP's logit_scale / text_projection / unused last layer, EMA bookkeeping).</summary>
    Ignored,

    /// <summary>The EMA copy of a U-Net weight (<c>model_ema.*</c>), used instead of the plain weight only on request.</summary>
    Ema,

    /// <summary>No rule covers the key: the file does not match the architecture.</summary>
    Unknown,
}

/// <summary>The resolution of one original key.</summary>
/// <param name="OriginalKey">The key as stored.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Mapping">For <see cref="SingleFileKeyKind.Mapped"/>: the diffusers key(s) and op.</param>
/// <param name="Reason">For ignored and EMA keys: why.</param>
internal sealed record SingleFileKeyResolution(string OriginalKey, SingleFileKeyKind Kind, SingleFileKeyMapping? Mapping, string? Reason);

/// <summary>
/// The complete, explicit correspondence between original (LDM / CompVis / Stability AI) single-file keys and diffusers
/// component keys, generated from the diffusers configs (<see cref="SingleFileArchitecture"/>) for one family. Works both
/// ways: <see cref="Resolve"/> (original → diffusers) and <see cref="ToOriginal"/> (diffusers → original).
/// </summary>
internal sealed class SingleFileKeyMap
{
    /// <summary>The LDM DDPM schedule buffers real original files carry (the scheduler is rebuilt from its config).</summary>
    public static IReadOnlyList<string> DdpmBufferKeys { get; } =
    [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    ];

    /// <summary>The prefix of EMA keys in non-pruned training checkpoints.</summary>
    public const string EmaPrefix = "model_ema.";

    private readonly Dictionary<string, ComponentKeyMap> _maps = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ddpm = new(DdpmBufferKeys, StringComparer.Ordinal);

    private SingleFileKeyMap(StableDiffusionFamily family, SingleFileArchitecture architecture)
    {
        Family = family;
        Architecture = architecture;
        if (architecture.UNet is { } unet) _maps[SingleFileComponents.UNet] = SingleFileKeyMaps.UNet(unet);
        if (architecture.Vae is { } vae) _maps[SingleFileComponents.Vae] = SingleFileKeyMaps.Vae(vae);
        if (architecture.TextEncoder is { } text)
        {
            _maps[SingleFileComponents.TextEncoder] = family == StableDiffusionFamily.Sd1 ? SingleFileKeyMaps.ClipText(text) : SingleFileKeyMaps.OpenClipText(text);
        }
    }

    /// <summary>Generates the key map of <paramref name="family"/> for the given architecture.</summary>
    public static SingleFileKeyMap Create(StableDiffusionFamily family, SingleFileArchitecture architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        if (!Enum.IsDefined(family)) throw new ArgumentOutOfRangeException(nameof(family), family, "unknown family");
        return new SingleFileKeyMap(family, architecture);
    }

    /// <summary>The family the map was generated for.</summary>
    public StableDiffusionFamily Family { get; }

    /// <summary>The architecture the map was generated from.</summary>
    public SingleFileArchitecture Architecture { get; }

    /// <summary>The components this map covers.</summary>
    public IReadOnlyList<string> Components => SingleFileComponents.All.Where(_maps.ContainsKey).ToArray();

    /// <summary>The original prefix of a component in this family.</summary>
    public string PrefixOf(string component) => SingleFileComponents.OriginalPrefix(component, Family);

    /// <summary>Classifies one original key and, when it is a weight, gives its diffusers key(s) and op.</summary>
    public SingleFileKeyResolution Resolve(string originalKey)
    {
        ArgumentNullException.ThrowIfNull(originalKey);
        foreach (var (component, map) in _maps)
        {
            string prefix = PrefixOf(component);
            if (!originalKey.StartsWith(prefix, StringComparison.Ordinal)) continue;
            if (map.ToDiffusers(originalKey[prefix.Length..]) is { } hit)
            {
                var mapping = new SingleFileKeyMapping(originalKey, component, hit.Keys.Select(k => k).ToArray(), hit.Op);
                return new SingleFileKeyResolution(originalKey, SingleFileKeyKind.Mapped, mapping, null);
            }
        }
        return IgnoreReason(originalKey) is { } reason
            ? new SingleFileKeyResolution(originalKey, reason.Ema ? SingleFileKeyKind.Ema : SingleFileKeyKind.Ignored, null, reason.Why)
            : new SingleFileKeyResolution(originalKey, SingleFileKeyKind.Unknown, null, null);
    }

    /// <summary>The original key of a diffusers tensor of <paramref name="component"/>, with the op and, for a fused
    /// q/k/v tensor, which of the <paramref name="parts"/> rows blocks it is (<paramref name="part"/>).</summary>
    /// <returns>The mapping, or null when no rule covers the key (it cannot be stored in this layout).</returns>
    public SingleFileKeyMapping? ToOriginal(string component, string diffusersKey, out int part, out int parts)
    {
        part = 0;
        parts = 1;
        if (!_maps.TryGetValue(component, out var map) || map.ToOriginal(diffusersKey) is not { } hit) return null;
        part = hit.Part;
        parts = hit.Parts;
        string original = PrefixOf(component) + hit.Key;
        var all = map.ToDiffusers(hit.Key)!.Value.Keys;
        return new SingleFileKeyMapping(original, component, all, hit.Op);
    }

    /// <summary>Original module prefixes (full keys) of which a file of this architecture must hold at least one key:
    /// a block the config has and the file lacks means the config does not describe the file.</summary>
    public IReadOnlyList<string> RequiredModules(string component) =>
        _maps.TryGetValue(component, out var map) ? map.RequiredModules.Select(m => PrefixOf(component) + m).ToArray() : [];

    /// <summary>The EMA key of a U-Net original key: <c>model_ema.</c> + the key without <c>model.</c> and without dots.</summary>
    public static string EmaKeyOf(string unetOriginalKey)
    {
        const string model = "model.";
        if (!unetOriginalKey.StartsWith(model, StringComparison.Ordinal))
            throw new ArgumentException($"'{unetOriginalKey}' is not a U-Net key (model.diffusion_model.*).", nameof(unetOriginalKey));
        return EmaPrefix + unetOriginalKey[model.Length..].Replace(".", "", StringComparison.Ordinal);
    }

    private (bool Ema, string Why)? IgnoreReason(string key)
    {
        if (_ddpm.Contains(key)) return (false, "LDM DDPM schedule buffer (the scheduler comes from its config)");
        if (key is "model_ema.decay" or "model_ema.num_updates") return (false, "EMA bookkeeping");
        if (key.StartsWith(EmaPrefix, StringComparison.Ordinal)) return (true, "EMA copy of a U-Net weight");
        if (key == SingleFileComponents.Sd1TextPrefix + "text_model.embeddings.position_ids")
            return (false, "position_ids buffer of older transformers (always 0..76)");
        if (Family != StableDiffusionFamily.Sd2 || !key.StartsWith(SingleFileComponents.Sd2TextPrefix, StringComparison.Ordinal)) return null;
        string rest = key[SingleFileComponents.Sd2TextPrefix.Length..];
        if (rest is "logit_scale" or "text_projection") return (false, $"OpenCLIP {rest}, unused by Stable Diffusion");
        const string blocks = "transformer.resblocks.";
        if (Architecture.TextEncoder is { } text && rest.StartsWith(blocks, StringComparison.Ordinal))
        {
            string number = rest[blocks.Length..].Split('.')[0];
            if (int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out int layer) && layer >= text.Layers)
                return (false, $"OpenCLIP layer {layer}, beyond the {text.Layers} layers of the text-encoder config (SD 2.x conditions on the penultimate layer)");
        }
        return null;
    }
}
