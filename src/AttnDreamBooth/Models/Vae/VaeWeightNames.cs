namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// Weight-name compatibility for VAE checkpoints. Older diffusers checkpoints (e.g. the original SD 1.5 and 2.1
/// hub files) name the mid-block attention projections <c>query</c>, <c>key</c>, <c>value</c> and
/// <c>proj_attn</c>; current diffusers names them <c>to_q</c>, <c>to_k</c>, <c>to_v</c> and <c>to_out.0</c>
/// (same shapes). Loading renames the old names as diffusers does.
/// </summary>
internal static class VaeWeightNames
{
    private static readonly IReadOnlyDictionary<string, string> LegacyProjections = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["query"] = "to_q",
        ["key"] = "to_k",
        ["value"] = "to_v",
        ["proj_attn"] = "to_out.0",
    };

    /// <summary>The current name of a stored weight: a legacy mid-block attention name
    /// (<c>….attentions.N.query.weight</c>) becomes its <c>to_q</c>/<c>to_k</c>/<c>to_v</c>/<c>to_out.0</c> form;
    /// every other name is returned unchanged.</summary>
    public static string ToCurrentName(string storedName)
    {
        ArgumentNullException.ThrowIfNull(storedName);
        string[] parts = storedName.Split('.');
        // Shape of a legacy key: <...>.attentions.<index>.<projection>.<weight|bias>.
        if (parts.Length < 4 || parts[^4] != "attentions" || !int.TryParse(parts[^3], out _)) return storedName;
        if (!LegacyProjections.TryGetValue(parts[^2], out string? current)) return storedName;
        return string.Join('.', parts[..^2]) + "." + current + "." + parts[^1];
    }

    /// <summary>Whether <paramref name="storedName"/> is a legacy attention name that <see cref="ToCurrentName"/> renames.</summary>
    public static bool IsLegacyName(string storedName) => !string.Equals(ToCurrentName(storedName), storedName, StringComparison.Ordinal);
}
