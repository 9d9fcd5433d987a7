namespace AttnDreamBooth.Models.Lora;

internal enum LoraPart
{
    Down,
    Up,
    Alpha,
}

/// <summary>Splits a LoRA file key into component, module name (kohya name or diffusers path), part and layout.</summary>
internal static class LoraKeys
{
    private static readonly (string Suffix, LoraPart Part)[] KohyaSuffixes =
        [(".lora_down.weight", LoraPart.Down), (".lora_up.weight", LoraPart.Up), (".alpha", LoraPart.Alpha)];

    private static readonly (string Suffix, LoraPart Part)[] DiffusersSuffixes =
    [
        (".lora.down.weight", LoraPart.Down), (".lora.up.weight", LoraPart.Up),
        (".lora_linear_layer.down.weight", LoraPart.Down), (".lora_linear_layer.up.weight", LoraPart.Up),
        (".lora_A.weight", LoraPart.Down), (".lora_B.weight", LoraPart.Up),
        (".alpha", LoraPart.Alpha),
    ];

    public static (LoraComponent Component, string Name, LoraPart Part, LoraFileFormat Format)? Parse(string key)
    {
        foreach (var component in new[] { LoraComponent.UNet, LoraComponent.TextEncoder })
        {
            string kohya = LoraComponentNames.KohyaPrefix(component);
            if (key.StartsWith(kohya, StringComparison.Ordinal) && key.IndexOf('.') > kohya.Length)
            {
                foreach (var (suffix, part) in KohyaSuffixes)
                {
                    if (key.EndsWith(suffix, StringComparison.Ordinal) && key.IndexOf('.') == key.Length - suffix.Length)
                        return (component, key[..^suffix.Length], part, LoraFileFormat.Kohya);
                }
                return null;
            }
            string diffusers = LoraComponentNames.DiffusersPrefix(component);
            if (key.StartsWith(diffusers, StringComparison.Ordinal))
            {
                foreach (var (suffix, part) in DiffusersSuffixes)
                {
                    if (key.EndsWith(suffix, StringComparison.Ordinal) && key.Length > diffusers.Length + suffix.Length)
                        return (component, key[diffusers.Length..^suffix.Length], part, LoraFileFormat.Diffusers);
                }
                return null;
            }
        }
        return null;
    }
}
