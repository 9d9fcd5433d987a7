using System.Text.Json;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>One prompt of a case's tokenizer_cases.json with the reference's answers.</summary>
public sealed record TokenizerCase(string Category, string Text, long[] InputIds, long[] AttentionMask, long[] InputIdsUnpadded, bool Truncated, string[] BpeTokens);

/// <summary>Reads tokenizer_cases.json and compares a tokenizer with every prompt in it.</summary>
public static class TokenizerCases
{
    public const string FileName = "tokenizer_cases.json";

    public static string PathOf(FixtureCase fixture) => Path.Combine(fixture.Folder, FileName);

    public static bool Exists(FixtureCase fixture) => File.Exists(PathOf(fixture));

    public static IReadOnlyList<TokenizerCase> Load(FixtureCase fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(PathOf(fixture)));
        static long[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt64()).ToArray();
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new TokenizerCase(
            c.GetProperty("category").GetString()!,
            c.GetProperty("text").GetString()!,
            Ints(c.GetProperty("input_ids")),
            Ints(c.GetProperty("attention_mask")),
            Ints(c.GetProperty("input_ids_unpadded")),
            c.GetProperty("truncated").GetBoolean(),
            c.GetProperty("bpe_tokens").EnumerateArray().Select(x => x.GetString()!).ToArray())).ToArray();
    }

    /// <summary>The pad id the reference tokenizer used (tokenizer_cases.json -> tokenizer.pad_token_id).</summary>
    public static int ReferencePadId(FixtureCase fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(PathOf(fixture)));
        return doc.RootElement.GetProperty("tokenizer").GetProperty("pad_token_id").GetInt32();
    }

    /// <summary>Every mismatch between <paramref name="tokenizer"/> and the reference, as readable lines (empty = exact).</summary>
    public static List<string> Compare(ClipTokenizer tokenizer, IReadOnlyList<TokenizerCase> cases)
    {
        var problems = new List<string>();
        foreach (var c in cases)
        {
            string label = $"[{c.Category}] {JsonSerializer.Serialize(c.Text)}";
            var unpadded = tokenizer.Encode(c.Text, truncate: false).Select(i => (long)i).ToArray();
            if (!unpadded.SequenceEqual(c.InputIdsUnpadded))
                problems.Add($"{label}: unpadded ids [{string.Join(' ', unpadded)}], expected [{string.Join(' ', c.InputIdsUnpadded)}]");
            var tokens = tokenizer.Tokenize(c.Text);
            if (!tokens.SequenceEqual(c.BpeTokens))
                problems.Add($"{label}: tokens [{string.Join(' ', tokens)}], expected [{string.Join(' ', c.BpeTokens)}]");
            var batch = tokenizer.EncodeBatch([c.Text]);
            var padded = Enumerable.Range(0, batch.SequenceLength).Select(i => batch.InputIds[0, i]).ToArray();
            var mask = Enumerable.Range(0, batch.SequenceLength).Select(i => batch.AttentionMask[0, i]).ToArray();
            if (!padded.SequenceEqual(c.InputIds))
                problems.Add($"{label}: padded ids [{string.Join(' ', padded)}], expected [{string.Join(' ', c.InputIds)}]");
            if (!mask.SequenceEqual(c.AttentionMask))
                problems.Add($"{label}: attention mask differs");
            if ((c.InputIdsUnpadded.Length > tokenizer.ModelMaxLength) != c.Truncated)
                problems.Add($"{label}: truncation flag disagrees with the unpadded length");
        }
        return problems;
    }
}
