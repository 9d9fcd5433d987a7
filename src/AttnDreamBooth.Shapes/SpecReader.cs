using System.Globalization;
using System.Text.Json;
using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>Reads JSON spec fields with errors that name the source and the JSON path of the bad field.</summary>
internal sealed class SpecReader(string source)
{
    public string Source { get; } = source;

    public InvalidShapesSpecException Error(string problem, Exception? inner = null) => new(Source, problem, inner);

    public JsonDocument Parse(string json)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw Error($"not valid JSON ({e.Message})", e);
        }
    }

    public JsonElement Object(JsonElement parent, string name, string path)
    {
        var e = Required(parent, name, path);
        if (e.ValueKind != JsonValueKind.Object) throw Error($"{path}.{name} must be an object");
        return e;
    }

    public JsonElement? OptionalObject(JsonElement parent, string name, string path)
    {
        if (!parent.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Object) throw Error($"{path}.{name} must be an object");
        return e;
    }

    public IReadOnlyList<JsonElement> Array(JsonElement parent, string name, string path, bool required = true)
    {
        if (!parent.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            if (required) throw Error($"{path}.{name} is missing");
            return [];
        }
        if (e.ValueKind != JsonValueKind.Array) throw Error($"{path}.{name} must be an array");
        return e.EnumerateArray().ToArray();
    }

    public string String(JsonElement parent, string name, string path, bool allowEmpty = false)
    {
        var e = Required(parent, name, path);
        if (e.ValueKind != JsonValueKind.String) throw Error($"{path}.{name} must be a string");
        string s = e.GetString()!;
        if (!allowEmpty && string.IsNullOrWhiteSpace(s)) throw Error($"{path}.{name} must not be empty");
        return s;
    }

    public string? OptionalString(JsonElement parent, string name, string path)
    {
        if (!parent.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(e.GetString())) throw Error($"{path}.{name} must be a non-empty string");
        return e.GetString();
    }

    /// <summary>A single lower-case caption word (no spaces), as CLIP sees it.</summary>
    public string Word(JsonElement parent, string name, string path)
    {
        string w = String(parent, name, path);
        if (w.Any(char.IsWhiteSpace) || w != w.ToLowerInvariant()) throw Error($"{path}.{name} '{w}' must be one lower-case word");
        return w;
    }

    public double Number(JsonElement parent, string name, string path, double min, double max, double? fallback = null)
    {
        if (!parent.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            if (fallback is { } f) return f;
            throw Error($"{path}.{name} is missing");
        }
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v))
            throw Error($"{path}.{name} must be a number");
        if (v < min || v > max)
            throw Error($"{path}.{name} = {v.ToString(CultureInfo.InvariantCulture)} is outside [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]");
        return v;
    }

    public bool Bool(JsonElement parent, string name, string path, bool fallback)
    {
        if (!parent.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return fallback;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"{path}.{name} must be true or false"),
        };
    }

    public RgbColor Color(JsonElement parent, string name, string path) => ParseColor(String(parent, name, path), $"{path}.{name}");

    public RgbColor ParseColor(string text, string path)
    {
        if (text.Length == 7 && text[0] == '#'
            && byte.TryParse(text.AsSpan(1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte r)
            && byte.TryParse(text.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte g)
            && byte.TryParse(text.AsSpan(5, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
            return new RgbColor(r, g, b);
        throw Error($"{path} '{text}' is not a colour of the form #rrggbb");
    }

    public T Enum<T>(JsonElement parent, string name, string path) where T : struct, Enum
    {
        string s = String(parent, name, path);
        if (System.Enum.TryParse<T>(s, ignoreCase: true, out var v) && System.Enum.IsDefined(v) && !char.IsDigit(s[0])) return v;
        throw Error($"{path}.{name} '{s}' is not one of {string.Join(", ", System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");
    }

    private JsonElement Required(JsonElement parent, string name, string path)
    {
        if (parent.ValueKind != JsonValueKind.Object) throw Error($"{path} must be an object");
        if (!parent.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) throw Error($"{path}.{name} is missing");
        return e;
    }
}
