using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// transformers <c>CLIPConfig</c> (a <c>CLIPModel</c> folder's config.json): the vision config, the raw text config, the
/// projection width and the initial logit scale. Nested configs are stored as diffs from the transformers defaults, so
/// missing values take those defaults (<see cref="ClipVisionConfig"/>, <see cref="TextDefaults"/>).
/// </summary>
/// <param name="Vision">The effective vision config.</param>
/// <param name="Text">The <c>text_config</c> section as stored (build the text tower from it, filling <see cref="TextDefaults"/>).</param>
/// <param name="TextHiddenSize">The effective text width (input of <c>text_projection</c>).</param>
/// <param name="ProjectionDim">The shared embedding width.</param>
/// <param name="LogitScaleInitValue">Initial value of <c>logit_scale</c> (the weights file holds the trained value).</param>
internal sealed record ClipModelConfig(ClipVisionConfig Vision, ConfigReader Text, int TextHiddenSize, int ProjectionDim, double LogitScaleInitValue)
{
    /// <summary>transformers <c>CLIPTextConfig</c> defaults that apply to keys the stored <c>text_config</c> omits.</summary>
    public static IReadOnlyDictionary<string, object> TextDefaults { get; } = new Dictionary<string, object>
    {
        ["vocab_size"] = 49408,
        ["hidden_size"] = 512,
        ["intermediate_size"] = 2048,
        ["num_hidden_layers"] = 12,
        ["num_attention_heads"] = 8,
        ["max_position_embeddings"] = 77,
        ["hidden_act"] = "quick_gelu",
        ["layer_norm_eps"] = 1e-5,
        ["pad_token_id"] = 1,
        ["bos_token_id"] = 49406,
        ["eos_token_id"] = 49407,
    };

    /// <summary>Reads a <c>CLIPModel</c> config.json.</summary>
    public static ClipModelConfig Load(string path) => FromReader(ConfigReader.Load(path));

    /// <summary>Reads a parsed <c>CLIPModel</c> config.</summary>
    public static ClipModelConfig FromReader(ConfigReader config)
    {
        var vision = ClipVisionConfig.FromReader(config.Section("vision_config") ?? ConfigReader.Parse("{}", config.FilePath));
        var text = config.Section("text_config") ?? ConfigReader.Parse("{}", config.FilePath);
        int projection = config.GetInt("projection_dim", 512);
        config.Require(projection > 0, "projection_dim", "must be positive");
        ResourceLimits.Current.RequireAtMost(config.FilePath, "projection_dim", projection, ResourceLimits.Current.MaxChannels, nameof(ResourceLimits.MaxChannels));
        return new ClipModelConfig(vision, text, text.GetInt("hidden_size", (int)TextDefaults["hidden_size"]), projection, config.GetDouble("logit_scale_init_value", 2.6592));
    }

    /// <summary>The effective text config (stored values over <see cref="TextDefaults"/>) as a reader, e.g. for
    /// <c>ClipTextConfig.FromReader</c>.</summary>
    public ConfigReader EffectiveTextConfig() => ConfigReader.Parse(EffectiveTextConfigJson(), Text.FilePath);

    /// <summary>The text config as a JSON object with the defaults filled in, for text towers whose own defaults differ.</summary>
    public string EffectiveTextConfigJson()
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in TextDefaults) values[k] = v;
        foreach (var property in Text.Root.EnumerateObject()) values[property.Name] = property.Value;
        return System.Text.Json.JsonSerializer.Serialize(values);
    }
}
