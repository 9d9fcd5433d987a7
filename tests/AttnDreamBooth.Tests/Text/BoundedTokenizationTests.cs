using System.Text;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Text;

/// <summary>Truncating encodes stop once they hold the 75 ids a prompt can use: the same ids as encoding everything
/// and cutting, in time that does not blow up with the prompt's length.</summary>
public sealed class BoundedTokenizationTests
{
    private static readonly ClipTokenizer Tokenizer = ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"));

    private static IReadOnlyList<int> Reference(string text)
    {
        var all = Tokenizer.EncodeWithoutSpecialTokens(text);
        return [Tokenizer.BosTokenId, .. all.Take(Tokenizer.ModelMaxLength - 2), Tokenizer.EosTokenId];
    }

    private static string RandomText(int seed, int length, string alphabet, double spaceRate)
    {
        var random = new Random(seed);
        var runes = alphabet.EnumerateRunes().ToArray();
        var text = new StringBuilder();
        while (text.Length < length)
        {
            text.Append(random.NextDouble() < spaceRate ? " " : runes[random.Next(runes.Length)].ToString());
        }
        return text.ToString();
    }

    public static TheoryData<string, double> Alphabets() => new()
    {
        { "abcdefghijklmnopqrstuvwxyz", 0.0 },
        { "abcdefghijklmnopqrstuvwxyz", 0.15 },
        { "aeiou", 0.0 },
        { "😀😂🐶🐱🎉❤️👍🏽", 0.0 },
        { "😀😂🐶🐱 cat dog photo of a", 0.05 },
        { "猫犬写真東京", 0.0 },
        { "éèêàçœßøåñ!?.,;'\"-_()", 0.0 },
        { "0123456789.,", 0.0 },
    };

    /// <summary>Long words are merged from a bounded prefix; the kept ids must equal a full encode's.</summary>
    [Theory]
    [MemberData(nameof(Alphabets))]
    public void KeptIdsEqualAFullEncodeCutToLength(string alphabet, double spaceRate)
    {
        for (int seed = 0; seed < 4; seed++)
        {
            string text = RandomText(seed, 6000, alphabet, spaceRate);
            Assert.Equal(Reference(text), Tokenizer.Encode(text));
        }
    }

    [Fact]
    public void ShortAndSpecialTokenPromptsAreUnchanged()
    {
        foreach (string text in new[] { "", " ", "a photo of a cat", "<|startoftext|>a<|endoftext|> b", "A <|ENDOFTEXT|> dog's tail!!", "x\u0000y\u200Bz" })
            Assert.Equal(Reference(text), Tokenizer.Encode(text));
    }

    public static TheoryData<string> MegabytePrompts() => new()
    {
        "mixed words and emoji",
        "one word",
        "one emoji run",
    };

    /// <summary>Merging a whole 1 MB prompt takes about 50 s (one word) or does not finish (mixed words and emoji). The bound is
    /// generous (the machine may be loaded); the work is linear in the text, and BPE runs only on the kept prefix.</summary>
    [Theory]
    [MemberData(nameof(MegabytePrompts))]
    public async Task AMegabytePromptTokenizesWithinABound(string kind)
    {
        const int size = 1 << 20;
        string text = kind switch
        {
            "mixed words and emoji" => RandomText(1, size, "abcdefgh😀🐶🎉猫 ", 0.1),
            "one word" => string.Concat(Enumerable.Repeat("supercalifragilistic", size / 20)),
            _ => string.Concat(Enumerable.Repeat("😀🐶🎉", size / 6)),
        };
        var ids = await Bounded.RunAsync(() => Tokenizer.Encode(text), TimeSpan.FromSeconds(30), $"tokenizing a 1 MB prompt ({kind})");
        Assert.Equal(Tokenizer.ModelMaxLength, ids.Count);
        // Deterministic part of the bound: BPE merging (super-linear in a word's length) only sees about what is kept,
        // at most (75 + 16) tokens' worth of the longest vocabulary entry (32 characters) per word merged.
        var prefix = Tokenizer.EncodePrefix(text, Tokenizer.ModelMaxLength - 2, out long merged);
        Assert.Equal(ids.Skip(1).Take(Tokenizer.ModelMaxLength - 2), prefix);
        Assert.InRange(merged, 1, (75 + 16) * 32);
        Assert.Equal(Tokenizer.EosTokenId, ids[^1]);
        // The batch path (what the pipeline uses) takes the same route.
        var batch = await Bounded.RunAsync(() => Tokenizer.EncodeBatch([text, "a cat"]), TimeSpan.FromSeconds(30), "a batch with a 1 MB prompt");
        Assert.Equal(ids.Select(i => (long)i), Enumerable.Range(0, Tokenizer.ModelMaxLength).Select(i => batch.InputIds[0, i]));
    }
}
