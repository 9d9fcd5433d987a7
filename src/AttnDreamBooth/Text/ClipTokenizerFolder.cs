using System.Text.Json;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Text;

/// <summary>What a transformers <c>CLIPTokenizer</c> folder says besides the BPE model: the special tokens
/// (<c>special_tokens_map.json</c> overrides <c>tokenizer_config.json</c>, as in transformers), the maximum length,
/// decoding clean-up, and tokens added after training (<c>added_tokens.json</c>, <c>added_tokens_decoder</c>).</summary>
internal sealed record ClipTokenizerFolder(
    string Folder,
    string BosToken,
    string EosToken,
    string UnknownToken,
    string PadToken,
    IReadOnlyList<string> AdditionalSpecialTokens,
    IReadOnlyList<(int Id, string Token, bool Special)> AddedTokens,
    int ModelMaxLength,
    bool CleanUpTokenizationSpaces)
{
    public const string VocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";
    public const string SpecialTokensMapFile = "special_tokens_map.json";
    public const string TokenizerConfigFile = "tokenizer_config.json";
    public const string AddedTokensFile = "added_tokens.json";

    /// <summary>CLIP's length, used when the folder gives no usable <c>model_max_length</c> (absent, or transformers'
    /// 1e30 "unbounded" marker).</summary>
    private const int DefaultModelMaxLength = 77;

    public static ClipTokenizerFolder Read(string folder)
    {
        string config = Path.Combine(folder, TokenizerConfigFile);
        string map = Path.Combine(folder, SpecialTokensMapFile);
        var values = new Dictionary<string, (string File, JsonElement Value)>(StringComparer.Ordinal);
        int maxLength = DefaultModelMaxLength;
        bool cleanUp = true;
        var added = new List<(int, string, bool)>();

        // Anything at these names is read (and refused by ConfigReader unless a regular file), not skipped: a directory or
        // FIFO named tokenizer_config.json must not silently change the special tokens.
        if (Path.Exists(config))
        {
            var reader = ConfigReader.Load(config);
            foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "pad_token", "additional_special_tokens" })
            {
                if (reader.Raw(key) is { } v) values[key] = (config, v);
            }
            if (reader.Raw("model_max_length") is { } m && m.ValueKind == JsonValueKind.Number)
            {
                // Hub files sometimes say 1e30 ("unbounded"); CLIP's position table is what bounds it then.
                maxLength = m.TryGetInt32(out int parsed) && parsed > 0 ? parsed : DefaultModelMaxLength;
            }
            cleanUp = reader.GetBool("clean_up_tokenization_spaces", true);
            if (reader.Raw("added_tokens_decoder") is { ValueKind: JsonValueKind.Object } decoder)
            {
                foreach (var entry in decoder.EnumerateObject())
                {
                    if (!int.TryParse(entry.Name, out int id) || id < 0)
                        throw new ModelConfigException(config, "added_tokens_decoder", $"'{entry.Name}' is not a token id");
                    added.Add((id, TokenContent(config, "added_tokens_decoder", entry.Value),
                        entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True));
                }
            }
        }
        if (Path.Exists(map))
        {
            var reader = ConfigReader.Load(map);
            foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "pad_token", "additional_special_tokens" })
            {
                if (reader.Raw(key) is { } v) values[key] = (map, v);
            }
        }
        string addedFile = Path.Combine(folder, AddedTokensFile);
        if (Path.Exists(addedFile))
        {
            var reader = ConfigReader.Load(addedFile);
            foreach (var entry in reader.Root.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                    throw new ModelConfigException(addedFile, entry.Name, "expected a non-negative token id");
                added.Add((id, entry.Name, false));
            }
        }

        string Token(string key, string fallback) => values.TryGetValue(key, out var v) ? TokenContent(v.File, key, v.Value) : fallback;
        var additional = values.TryGetValue("additional_special_tokens", out var list)
            ? list.Value.ValueKind == JsonValueKind.Array
                ? list.Value.EnumerateArray().Select(e => TokenContent(list.File, "additional_special_tokens", e)).ToArray()
                : throw new ModelConfigException(list.File, "additional_special_tokens", "expected a list of tokens")
            : [];

        // transformers' CLIPTokenizer defaults: every special token except BOS is <|endoftext|>.
        return new ClipTokenizerFolder(folder,
            Token("bos_token", "<|startoftext|>"), Token("eos_token", "<|endoftext|>"),
            Token("unk_token", "<|endoftext|>"), Token("pad_token", "<|endoftext|>"),
            additional, added.DistinctBy(a => a.Item1).OrderBy(a => a.Item1).ToArray(), maxLength, cleanUp);
    }

    private static string TokenContent(string file, string key, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString()!,
        _ => throw new ModelConfigException(file, key, $"expected a token string or an object with \"content\", found {value.ValueKind}"),
    } is { Length: > 0 } s ? s : throw new ModelConfigException(file, key, "the token is empty");
}
