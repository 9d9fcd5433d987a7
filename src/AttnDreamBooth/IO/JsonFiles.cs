using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace AttnDreamBooth.IO;

/// <summary>
/// The one spelling of every JSON file the library and its tools write: snake_case keys and enum values (the convention
/// of diffusers' <c>config.json</c> and <c>model_index.json</c>, which our folders sit next to and Python users read),
/// indented, non-ASCII text unescaped, non-finite numbers as <c>"NaN"</c> / <c>"Infinity"</c>. Earlier versions wrote
/// some files in PascalCase or camelCase; <see cref="Deserialize{T}(string, JsonSerializerOptions?)"/> reads those too.
/// </summary>
public static class JsonFiles
{
    /// <summary>snake_case, with "UNet" and "IoU" kept as one word each (<c>unet_steps</c>, <c>heatmap_iou</c>), as
    /// diffusers spells its <c>unet</c> folder.</summary>
    public static JsonNamingPolicy NamingPolicy { get; } = new SnakeCaseWords();

    /// <summary>Options for writing and reading the files (read-only; derive with <see cref="With"/>).</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    /// <summary>The options with extra converters, which take precedence over the built-in ones (e.g. a type written by
    /// a short name of its own).</summary>
    public static JsonSerializerOptions With(params JsonConverter[] converters)
    {
        var options = new JsonSerializerOptions(Options);
        for (int i = 0; i < converters.Length; i++) options.Converters.Insert(i, converters[i]);
        options.MakeReadOnly();
        return options;
    }

    /// <summary><paramref name="value"/> as the file's text.</summary>
    public static string Serialize<T>(T value, JsonSerializerOptions? options = null) => JsonSerializer.Serialize(value, options ?? Options);

    /// <summary>A hand-built document as the file's text.</summary>
    public static string Serialize(JsonNode node) => node.ToJsonString(Options);

    /// <summary>An enum value as the files spell it (<c>single_file</c>, <c>v_prediction</c>).</summary>
    public static string EnumValue<TEnum>(TEnum value) where TEnum : struct, Enum => NamingPolicy.ConvertName(value.ToString());

    /// <summary>
    /// Reads a file's text into <typeparamref name="T"/>. Keys may be spelt as this version writes them or as earlier
    /// versions did (PascalCase, camelCase: a key matches the property whose name it equals ignoring case and
    /// underscores); enum values likewise. Dictionary keys are data and are never renamed.
    /// </summary>
    /// <exception cref="JsonException">The text is not valid JSON or does not fit <typeparamref name="T"/>.</exception>
    public static T? Deserialize<T>(string json, JsonSerializerOptions? options = null)
    {
        options ??= Options;
        var node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = options.MaxDepth == 0 ? 64 : options.MaxDepth });
        if (node is null) return default;
        Rename(node, options.GetTypeInfo(typeof(T)), options, depth: 0);
        return node.Deserialize<T>(options);
    }

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = NamingPolicy,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            Converters = { new JsonStringEnumConverter(NamingPolicy) },
            // Some enum properties carry an attribute naming a converter (it fixes their spelling in run fingerprints);
            // in files the policy's converter spells them.
            TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { PolicyForEnumProperties } },
        };
        options.MakeReadOnly();
        return options;
    }

    private static void PolicyForEnumProperties(JsonTypeInfo info)
    {
        if (info.Kind != JsonTypeInfoKind.Object) return;
        foreach (var property in info.Properties)
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (type.IsEnum) property.CustomConverter = null;
        }
    }

    private static void Rename(JsonNode node, JsonTypeInfo info, JsonSerializerOptions options, int depth)
    {
        if (depth > 64) return; // The deserializer reports the depth; this walk only must not recurse without end.
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Object when node is JsonObject obj:
                var properties = new Dictionary<string, JsonPropertyInfo>(StringComparer.Ordinal);
                foreach (var p in info.Properties) properties.TryAdd(Collapse(p.Name), p);
                foreach (var (key, value) in obj.ToList())
                {
                    if (!properties.TryGetValue(Collapse(key), out var property)) continue;
                    if (key != property.Name && !obj.ContainsKey(property.Name))
                    {
                        obj.Remove(key);
                        obj[property.Name] = value;
                    }
                    if (value is not null) Rename(value, options.GetTypeInfo(property.PropertyType), options, depth + 1);
                }
                break;
            case JsonTypeInfoKind.Dictionary when node is JsonObject map && info.ElementType is { } valueType:
                foreach (var (_, value) in map.ToList())
                    if (value is not null) Rename(value, options.GetTypeInfo(valueType), options, depth + 1);
                break;
            case JsonTypeInfoKind.Enumerable when node is JsonArray array && info.ElementType is { } elementType:
                foreach (var item in array.ToList())
                    if (item is not null) Rename(item, options.GetTypeInfo(elementType), options, depth + 1);
                break;
        }
    }

    private static string Collapse(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    private sealed class SnakeCaseWords : JsonNamingPolicy
    {
        public override string ConvertName(string name) =>
            SnakeCaseLower.ConvertName(name.Replace("UNet", "Unet", StringComparison.Ordinal).Replace("IoU", "Iou", StringComparison.Ordinal));
    }
}
