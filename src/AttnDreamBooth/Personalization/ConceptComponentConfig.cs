using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;

namespace AttnDreamBooth.Personalization;

/// <summary>Checks that a concept's <c>unet/config.json</c> (or <c>vae/config.json</c>) describes the base model's U-Net (VAE).</summary>
internal static class ConceptComponentConfig
{
    /// <summary>The concept's U-Net config must be valid and equal the base model's on every key that does not start with
    /// an underscore (bookkeeping such as <c>_diffusers_version</c>): the weights are loaded into the base model's
    /// U-Net, so a config that differs (in a way the weight shapes may not show, e.g. the attention head count) means
    /// the concept was trained on another model.</summary>
    /// <exception cref="ModelConfigException">The config is missing, invalid or differs; the message names the key.</exception>
    public static void CheckUNet(string conceptConfig, string baseConfig) =>
        CheckMatchesBase(conceptConfig, baseConfig, "U-Net", path => UNetConfig.Load(path));

    /// <summary>As <see cref="CheckUNet"/>, for the VAE of a concept whose decoder was adapted.</summary>
    /// <exception cref="ModelConfigException">The config is missing, invalid or differs; the message names the key.</exception>
    public static void CheckVae(string conceptConfig, string baseConfig) =>
        CheckMatchesBase(conceptConfig, baseConfig, "VAE", path => AutoencoderKLConfig.Load(path));

    private static void CheckMatchesBase(string conceptConfig, string baseConfig, string component, Action<string> validate)
    {
        if (!File.Exists(conceptConfig)) throw new ModelConfigException(conceptConfig, null, $"is missing: the concept's {component} config is required");
        validate(conceptConfig);
        var concept = Read(conceptConfig);
        var based = Read(baseConfig);
        foreach (var key in concept.Select(p => p.Key).Union(based.Select(p => p.Key)).Where(k => !k.StartsWith('_')).Order(StringComparer.Ordinal))
        {
            concept.TryGetPropertyValue(key, out var a);
            based.TryGetPropertyValue(key, out var b);
            if (!JsonNode.DeepEquals(a, b))
                throw new ModelConfigException(conceptConfig, key,
                    $"is {Show(a)} but the base model's {component} ('{baseConfig}') has {Show(b)}: the concept was trained on another base model");
        }
    }

    private static JsonObject Read(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ModelConfigException(path, null, "expected a JSON object");
        }
        catch (JsonException ex)
        {
            throw new ModelConfigException(path, null, $"is not valid JSON ({ex.Message})", ex);
        }
    }

    private static string Show(JsonNode? node)
    {
        string text = node?.ToJsonString() ?? "absent";
        return text.Length > 80 ? text[..80] + "…" : text;
    }
}
