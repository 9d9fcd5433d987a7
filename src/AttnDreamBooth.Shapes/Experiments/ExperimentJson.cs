using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>The JSON form of the experiment's files: camel-case names, methods by their short names ("ti", "ti-db", …),
/// NaN allowed (an estimate without samples).</summary>
internal static class ExperimentJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new MethodConverter() },
    };

    private sealed class MethodConverter : JsonConverter<PersonalizationMethod>
    {
        public override PersonalizationMethod Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            PersonalizationMethods.TryParse(reader.GetString(), out var method) ? method : throw new JsonException($"Unknown method '{reader.GetString()}'.");

        public override void Write(Utf8JsonWriter writer, PersonalizationMethod value, JsonSerializerOptions options) => writer.WriteStringValue(value.Name());

        public override PersonalizationMethod ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Read(ref reader, typeToConvert, options);

        public override void WriteAsPropertyName(Utf8JsonWriter writer, PersonalizationMethod value, JsonSerializerOptions options) =>
            writer.WritePropertyName(value.Name());
    }
}
