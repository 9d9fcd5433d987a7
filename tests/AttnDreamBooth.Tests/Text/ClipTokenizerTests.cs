using AttnDreamBooth.IO;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Text;

public sealed class ClipTokenizerTests
{
    private static readonly Lazy<ClipTokenizer> Sd1 = new(() => ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer")));
    private static readonly Lazy<ClipTokenizer> Sd2 = new(() => ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd2, "tokenizer")));

    private static ClipTokenizer Fresh(string pipeline) => ClipTokenizer.FromFolder(Path.Combine(pipeline, "tokenizer"));

    [Fact]
    public void ReadsSpecialTokensAndPadFromTheFolder()
    {
        Assert.Equal(77, Sd1.Value.ModelMaxLength);
        Assert.Equal(49406, Sd1.Value.BosTokenId);
        Assert.Equal(49407, Sd1.Value.EosTokenId);
        Assert.Equal(49407, Sd1.Value.PadTokenId);
        Assert.Equal(0, Sd2.Value.PadTokenId);
        Assert.Equal("!", Sd2.Value.PadToken);
        Assert.Equal(49408, Sd1.Value.VocabularySize);
    }

    [Fact]
    public void EncodesTheDocumentedExample()
    {
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407], Sd1.Value.Encode("a photo of a cat"));
        Assert.Equal([49406, 49407], Sd1.Value.Encode(""));
    }

    [Fact]
    public void Sd2SplitsEveryExclamationMarkAsThePadToken()
    {
        var ids = Sd2.Value.EncodeWithoutSpecialTokens("wow!!");
        Assert.Equal([0, 0], ids.Skip(ids.Count - 2));
        Assert.NotEqual(Sd1.Value.EncodeWithoutSpecialTokens("wow!!"), ids);
    }

    [Fact]
    public void TruncationKeepsBosAndEos()
    {
        string text = string.Join(' ', Enumerable.Repeat("cat", 200));
        var ids = Sd1.Value.Encode(text);
        Assert.Equal(77, ids.Count);
        Assert.Equal(49406, ids[0]);
        Assert.Equal(49407, ids[^1]);
        Assert.Equal(202, Sd1.Value.Encode(text, truncate: false).Count);
    }

    [Fact]
    public void BatchPadsWithPadIdAndMasksPadding()
    {
        var batch = Sd2.Value.EncodeBatch(["a photo of a cat", "a dog"]);
        Assert.Equal(2, batch.BatchSize);
        Assert.Equal(77, batch.SequenceLength);
        Assert.Equal([7, 4], batch.Lengths);
        Assert.Equal(49407, batch.InputIds[1, 3]);
        Assert.Equal(0, batch.InputIds[1, 4]);
        Assert.Equal(1, batch.AttentionMask[1, 3]);
        Assert.Equal(0, batch.AttentionMask[1, 4]);
        var longest = Sd2.Value.EncodeBatch(["a photo of a cat", "a dog"], padToMaxLength: false);
        Assert.Equal(7, longest.SequenceLength);
        using var tensor = Sd2.Value.EncodeToTensor(["a dog"]);
        Assert.Equal([1L, 77L], tensor.shape);
        Assert.Equal(TorchSharp.torch.int64, tensor.dtype);
    }

    [Fact]
    public void HandlesCharactersOutsideTheBasicMultilingualPlane()
    {
        // Mathematical bold letters are letters (category Ll/Lu) outside the BMP; a UTF-16 regex would call them punctuation.
        var words = ClipPreTokenizer.Split("𝐚𝐛c,𝟏2".AsSpan());
        Assert.Equal([(0, 5), (5, 1), (6, 2), (8, 1)], words);
    }

    [Fact]
    public void CleanerFollowsThePythonFallback()
    {
        var cleaner = ClipTextCleaner.Instance;
        Assert.Equal("a photo of a cat", cleaner.Normalize("  A\tPHOTO\u200b of\na CAT "));
        Assert.Equal("东 京", cleaner.Normalize("东京"));
        Assert.Equal("café", cleaner.Normalize("cafe\u0301"));
        Assert.Equal("i\u0307stanbul", cleaner.Normalize("İSTANBUL"));
        Assert.Equal("σος", cleaner.Normalize("ΣΟΣ"));
        Assert.Equal("a b", cleaner.Normalize("a\u2028b"));
    }

    [Fact]
    public void AsciiFastPathAgreesWithTheGeneralCleaner()
    {
        var random = new Random(5);
        const string alphabet = "aZ9 \t\n\r\u0007\u000b\u001f\u007f!'.,-";
        for (int n = 0; n < 500; n++)
        {
            string ascii = new(Enumerable.Range(0, random.Next(0, 20)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
            string fast = ClipTextCleaner.Instance.Normalize(ascii);
            // A trailing non-ASCII word sends the same text down the general path.
            string general = ClipTextCleaner.Instance.Normalize(ascii + " \u00e9");
            Assert.Equal(fast.Length == 0 ? "\u00e9" : fast + " \u00e9", general);
        }
    }

    [Fact]
    public void AddedTokenIsWholeAndGetsTheNextId()
    {
        var tokenizer = Fresh(TestPaths.TinySd1);
        int id = tokenizer.AddToken("new_concept_v0");
        Assert.Equal(49408, id);
        Assert.Equal(49409, tokenizer.VocabularySize);
        Assert.Equal([49406, 320, 1125, 539, 320, 49408, 1929, 49407], tokenizer.Encode("a photo of a new_concept_v0 dog"));
        Assert.Equal([49406, 49408, 49408, 49407], tokenizer.Encode("new_concept_v0new_concept_v0"));
        Assert.True(tokenizer.TryGetTokenId("new_concept_v0", out int found));
        Assert.Equal(49408, found);
        Assert.Equal("a photo of a new_concept_v0 dog", tokenizer.Decode(tokenizer.Encode("a photo of a new_concept_v0 dog")));
    }

    [Fact]
    public void AddingAnExistingTokenIsRefused()
    {
        var tokenizer = Fresh(TestPaths.TinySd1);
        var ex = Assert.Throws<ConceptTokenException>(() => tokenizer.AddToken("sks"));
        Assert.Equal(48136, ex.TokenId);
        Assert.Throws<ConceptTokenException>(() => tokenizer.AddToken("<|endoftext|>"));
        tokenizer.AddToken("<v>");
        Assert.Throws<ConceptTokenException>(() => tokenizer.AddToken("<v>"));
        Assert.Throws<ArgumentException>(() => tokenizer.AddToken(" "));
    }

    [Fact]
    public void TryGetTokenIdFindsWholeWords()
    {
        Assert.True(Sd1.Value.TryGetTokenId("sks", out int sks));
        Assert.Equal(48136, sks);
        Assert.True(Sd1.Value.TryGetTokenId("dog</w>", out int dog));
        Assert.Equal(1929, dog);
        Assert.False(Sd1.Value.TryGetTokenId("new_concept_v0", out _));
    }

    [Fact]
    public void DecodesBackToCleanedText()
    {
        var tokenizer = Sd1.Value;
        Assert.Equal("a photo of a cat, maybe!", tokenizer.Decode(tokenizer.Encode("A photo of a cat , maybe !")));
        Assert.Equal("<|startoftext|>a photo of a cat <|endoftext|>", tokenizer.Decode(tokenizer.Encode("a photo of a cat"), skipSpecialTokens: false));
        Assert.Equal("crème brûlée 東 京", tokenizer.Decode(tokenizer.Encode("Crème brûlée 東京")));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([49408]));
    }

    [Fact]
    public void ConcurrentEncodesAgreeWithSequentialOnes()
    {
        var tokenizer = Fresh(TestPaths.TinySd2);
        var prompts = TokenizerCases.Load(FixtureRoots.Get("tiny-sd2")).Select(c => c.Text).ToArray();
        var expected = prompts.Select(p => tokenizer.Encode(p, truncate: false).ToArray()).ToArray();
        int mismatches = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, worker =>
        {
            for (int round = 0; round < 50; round++)
            {
                for (int k = 0; k < prompts.Length; k++)
                {
                    int index = (k + worker * 7 + round) % prompts.Length;
                    if (!tokenizer.Encode(prompts[index], truncate: false).SequenceEqual(expected[index])) Interlocked.Increment(ref mismatches);
                }
                if (worker == 0 && round == 10) tokenizer.AddToken("<concurrent-token>");
            }
        });
        Assert.Equal(0, mismatches);
    }

    [Fact]
    public void MissingFilesAreNamed()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var ex = Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Contains("vocab.json", ex.Message);
        File.Copy(Path.Combine(TestPaths.TinySd1, "tokenizer", "vocab.json"), dir.File("vocab.json"));
        File.Copy(Path.Combine(TestPaths.TinySd1, "tokenizer", "merges.txt"), dir.File("merges.txt"));
        File.WriteAllText(dir.File("special_tokens_map.json"), "{\"pad_token\": \"<pad>\"}");
        var pad = Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(dir.Path));
        Assert.Equal("pad_token", pad.Key);
    }

    [Theory]
    [InlineData("stable-diffusion-2-1-base", false, 0)]
    [InlineData("stable-diffusion-2-1", false, 49407)]
    [InlineData("stable-diffusion-2-1", true, 0)]
    public void ReadsThePadTokenOfRealTokenizerConfigs(string variant, bool withSpecialTokensMap, int expectedPad)
    {
        using var dir = TestPaths.CreateTempDirectory();
        File.Copy(Path.Combine(TestPaths.TinySd1, "tokenizer", "vocab.json"), dir.File("vocab.json"));
        File.Copy(Path.Combine(TestPaths.TinySd1, "tokenizer", "merges.txt"), dir.File("merges.txt"));
        File.Copy(Path.Combine(FixtureRoots.RealSize, variant, "tokenizer", "tokenizer_config.json"), dir.File("tokenizer_config.json"));
        // The published 2.1 special_tokens_map.json overrides the config's pad token with "!".
        if (withSpecialTokensMap) File.WriteAllText(dir.File("special_tokens_map.json"), "{\"pad_token\": \"!\"}");
        var tokenizer = ClipTokenizer.FromFolder(dir.Path);
        Assert.Equal(expectedPad, tokenizer.PadTokenId);
        Assert.Equal(77, tokenizer.ModelMaxLength);
        Assert.Equal(49408, tokenizer.VocabularySize);
    }

    [Fact]
    public void ReadsAddedTokensJson()
    {
        using var dir = TestPaths.CreateTempDirectory();
        foreach (string f in Directory.GetFiles(Path.Combine(TestPaths.TinySd1, "tokenizer"))) File.Copy(f, dir.File(Path.GetFileName(f)));
        File.WriteAllText(dir.File("added_tokens.json"), "{\"<cat-toy>\": 49408}");
        var tokenizer = ClipTokenizer.FromFolder(dir.Path);
        Assert.Equal([49406, 320, 49408, 49407], tokenizer.Encode("a <cat-toy>"));
    }
}
