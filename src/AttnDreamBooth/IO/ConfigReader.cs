using System.Text.Json;

namespace AttnDreamBooth.IO;

/// <summary>
/// Typed access to a diffusers/transformers <c>config.json</c>. Unknown keys are ignored; a missing or
/// <c>null</c> key takes the supplied default; a missing key without default, or a value of the wrong type,
/// is a <see cref="ModelConfigException"/> naming the file and key.
/// </summary>
internal sealed class ConfigReader
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip };

    private readonly JsonElement _root;

    private ConfigReader(string filePath, JsonElement root)
    {
        FilePath = filePath;
        _root = root;
    }

    /// <summary>The file the values come from (for error messages).</summary>
    public string FilePath { get; }

    /// <summary>The whole JSON object.</summary>
    public JsonElement Root => _root;

    /// <summary>Reads and parses a JSON object file.</summary>
    public static ConfigReader Load(string path)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new ModelConfigException(full, null, "is a directory, not a regular file; it was not opened");
        if (!File.Exists(full)) throw new ModelConfigException(full, null, "the configuration file does not exist");
        if (!RegularFile.IsRegular(full)) throw new ModelConfigException(full, null, "is not a regular file (a FIFO, device, socket, or a link to one); it was not opened");
        var info = new FileInfo(full);
        long max = ResourceLimits.Current.MaxConfigFileBytes;
        if (info.Length > max) throw new ModelConfigException(full, null, $"the file has {info.Length:N0} bytes, which {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxConfigFileBytes), max)}");
        try
        {
            using var doc = JsonDocument.Parse(QuoteNonFiniteLiterals(File.ReadAllBytes(full)), DocumentOptions);
            return FromElement(full, doc.RootElement.Clone());
        }
        catch (JsonException ex)
        {
            throw new ModelConfigException(full, null, $"not valid JSON ({ex.Message})", ex);
        }
    }

    /// <summary>Wraps an already-parsed JSON object (e.g. a nested config).</summary>
    public static ConfigReader FromElement(string filePath, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ModelConfigException(filePath, null, $"expected a JSON object, found {root.ValueKind}");
        return new ConfigReader(filePath, root);
    }

    /// <summary>Parses JSON text (tests and in-memory configs).</summary>
    public static ConfigReader Parse(string json, string filePath = "<memory>")
    {
        try
        {
            using var doc = JsonDocument.Parse(QuoteNonFiniteLiterals(System.Text.Encoding.UTF8.GetBytes(json)), DocumentOptions);
            return FromElement(filePath, doc.RootElement.Clone());
        }
        catch (JsonException ex)
        {
            throw new ModelConfigException(filePath, null, $"not valid JSON ({ex.Message})", ex);
        }
    }

    /// <summary>True when the key is present and not null.</summary>
    public bool Has(string key) => _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The raw element, or null when absent or null.</summary>
    public JsonElement? Raw(string key) => _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    /// <summary>A nested object as its own reader, or null when absent.</summary>
    public ConfigReader? Section(string key) => Raw(key) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } v => new ConfigReader(FilePath, v),
        { } v => throw Wrong(key, "an object", v),
    };

    /// <summary>An integer (a JSON number without fraction).</summary>
    public int GetInt(string key, int? defaultValue = null) => Get(key, defaultValue, e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : null, "an integer");

    /// <summary>An integer that may be null.</summary>
    public int? GetNullableInt(string key) => Raw(key) is null ? null : GetInt(key);

    /// <summary>A floating-point number.</summary>
    public double GetDouble(string key, double? defaultValue = null) => Get(key, defaultValue, e => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : ParseSpecial(e), "a number");

    /// <summary>A boolean.</summary>
    public bool GetBool(string key, bool? defaultValue = null) =>
        Get(key, defaultValue, e => e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : null, "true or false");

    /// <summary>A string.</summary>
    public string GetString(string key, string? defaultValue = null)
    {
        if (Raw(key) is not { } e)
            return defaultValue ?? throw new ModelConfigException(FilePath, key, "required key is missing");
        return e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong(key, "a string", e);
    }

    /// <summary>A string that may be absent or null.</summary>
    public string? GetNullableString(string key) => Raw(key) is null ? null : GetString(key);

    /// <summary>An array of integers.</summary>
    public int[] GetIntArray(string key, int[]? defaultValue = null)
    {
        if (Raw(key) is not { } e)
            return defaultValue ?? throw new ModelConfigException(FilePath, key, "required key is missing");
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(key, "an array of integers", e);
        var result = new int[e.GetArrayLength()];
        int i = 0;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out result[i++])) throw Wrong(key, "an array of integers", e);
        }
        return result;
    }

    /// <summary>An array of strings.</summary>
    public string[] GetStringArray(string key, string[]? defaultValue = null)
    {
        if (Raw(key) is not { } e)
            return defaultValue ?? throw new ModelConfigException(FilePath, key, "required key is missing");
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(key, "an array of strings", e);
        return e.EnumerateArray().Select(item => item.ValueKind == JsonValueKind.String ? item.GetString()! : throw Wrong(key, "an array of strings", e)).ToArray();
    }

    /// <summary>An integer, or a list of integers (one per block), expanded to <paramref name="count"/> entries.</summary>
    public int[] GetIntOrList(string key, int count, int[]? defaultValue = null)
    {
        if (Raw(key) is not { } e)
        {
            if (defaultValue is null) throw new ModelConfigException(FilePath, key, "required key is missing");
            if (defaultValue.Length == 1) return Enumerable.Repeat(defaultValue[0], count).ToArray();
            if (defaultValue.Length != count)
                throw new ArgumentException($"The default for '{key}' has {defaultValue.Length} entries; expected 1 or {count}.", nameof(defaultValue));
            return defaultValue;
        }
        if (e.ValueKind == JsonValueKind.Number) return Enumerable.Repeat(GetInt(key), count).ToArray();
        var list = GetIntArray(key);
        if (list.Length != count) throw new ModelConfigException(FilePath, key, $"has {list.Length} entries, expected {count} (one per block)");
        return list;
    }

    /// <summary>Throws a <see cref="ModelConfigException"/> for <paramref name="key"/> unless <paramref name="condition"/> holds.</summary>
    public void Require(bool condition, string key, string problem)
    {
        if (!condition) throw new ModelConfigException(FilePath, key, problem);
    }

    private T Get<T>(string key, T? defaultValue, Func<JsonElement, T?> convert, string expected) where T : struct
    {
        if (Raw(key) is not { } e)
            return defaultValue ?? throw new ModelConfigException(FilePath, key, "required key is missing");
        return convert(e) ?? throw Wrong(key, expected, e);
    }

    private static double? ParseSpecial(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString() switch
    {
        "-inf" or "-Infinity" => double.NegativeInfinity,
        "inf" or "Infinity" => double.PositiveInfinity,
        "nan" or "NaN" => double.NaN,
        _ => null,
    } : null;

    /// <summary>
    /// Python's <c>json.dump</c> writes non-finite floats as the bare literals <c>NaN</c>, <c>Infinity</c> and
    /// <c>-Infinity</c>, which are not JSON; configs written that way are accepted by quoting those literals, so
    /// <see cref="GetDouble"/> reads them like the quoted spellings.
    /// </summary>
    internal static byte[] QuoteNonFiniteLiterals(byte[] json)
    {
        if (json.AsSpan().IndexOfAny("NI"u8) < 0) return json;
        var output = new List<byte>(json.Length + 16);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            byte b = json[i];
            if (inString)
            {
                output.Add(b);
                if (b == (byte)'\\' && i + 1 < json.Length) output.Add(json[++i]);
                else if (b == (byte)'"') inString = false;
                continue;
            }
            if (b == (byte)'"') inString = true;
            int length = MatchLiteral(json, i);
            if (length > 0)
            {
                output.Add((byte)'"');
                for (int k = 0; k < length; k++) output.Add(json[i + k]);
                output.Add((byte)'"');
                i += length - 1;
                continue;
            }
            output.Add(b);
        }
        return output.ToArray();
    }

    private static int MatchLiteral(byte[] json, int i)
    {
        foreach (var literal in new[] { "-Infinity"u8.ToArray(), "Infinity"u8.ToArray(), "NaN"u8.ToArray() })
        {
            if (json.AsSpan(i).StartsWith(literal) && (i + literal.Length == json.Length || !IsIdentifierByte(json[i + literal.Length]))
                && (i == 0 || !IsIdentifierByte(json[i - 1])))
                return literal.Length;
        }
        return 0;
    }

    private static bool IsIdentifierByte(byte b) => b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'_' or (byte)'.';

    private ModelConfigException Wrong(string key, string expected, JsonElement actual)
    {
        string text = actual.GetRawText();
        if (text.Length > 60) text = text[..60] + "…";
        return new ModelConfigException(FilePath, key, $"expected {expected}, found {text}");
    }
}
