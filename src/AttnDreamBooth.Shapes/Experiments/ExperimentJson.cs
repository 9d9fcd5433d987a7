using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>The JSON form of the experiment's files: the library's file spelling (<see cref="JsonFiles"/>), with methods
/// by their short names ("ti", "ti-db", …).</summary>
internal static class ExperimentJson
{
    public static JsonSerializerOptions Options { get; } = JsonFiles.With(new MethodConverter());

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
