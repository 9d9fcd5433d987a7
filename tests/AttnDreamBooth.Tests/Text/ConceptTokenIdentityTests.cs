using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Tests.Text;

/// <summary>One token-identity rule for training, saving and loading; special tokens are never concept tokens.</summary>
public sealed class ConceptTokenIdentityTests
{
    private static ClipTokenizer Sd1Tokenizer() => ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"));

    [Fact]
    public void AnExistingWholeWordBindsToTheIdPromptsProduceNotToItsWordStartPiece()
    {
        var tokenizer = Sd1Tokenizer();
        var binding = ConceptTokenIdentity.Resolve(tokenizer, "cat");
        Assert.Equal(ConceptTokenKind.Existing, binding.Kind);
        Assert.Equal(2368, binding.ExistingId);
        Assert.Equal("cat</w>", binding.Spelling);
        Assert.Equal(2368, tokenizer.Encode("a photo of a cat")[5]);
        Assert.Equal(ConceptTokenKind.New, ConceptTokenIdentity.Resolve(tokenizer, "new_concept_v0").Kind);
        Assert.Equal(48136, ConceptTokenIdentity.Resolve(tokenizer, "sks").ExistingId);
    }

    /// <summary>Whole words of the vocabulary: the word-start piece of the same spelling (what a reload bound to before)
    /// has another id, and "backpack" has none, so its first BPE piece as a word start is "back" (1663).</summary>
    public static TheoryData<string, int, int> ExistingWords() => new()
    {
        { "cat", 2368, 1481 },
        { "photo", 1125, 1153 },
        { "dog", 1929, 4326 },
        { "backpack", 14894, 1663 },
    };

    [Theory]
    [MemberData(nameof(ExistingWords))]
    public async Task AConceptTrainedOnAnExistingWordUsesItsLearnedRowAfterSaveAndReload(string word, int wholeWordId, int wordStartId)
    {
        var tokenizer = Sd1Tokenizer();
        Assert.Equal(new[] { wholeWordId }, tokenizer.EncodeWithoutSpecialTokens(word));
        Assert.NotEqual(wholeWordId, wordStartId);
        using var temp = TestPaths.CreateTempDirectory();
        string folder = temp.File(word);
        torch.Tensor learned;
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(2, 0, 0), TinyPipeline.Options()))
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog(word));
            Assert.Equal(wholeWordId, pipeline.ConceptEmbedding!.TokenIds[0]);
            learned = model.EmbeddingVector();
            await model.SaveAsync(folder);
        }
        var metadata = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, PersonalizedModel.MetadataFile)))!.AsObject();
        Assert.Equal(wholeWordId, (int)metadata["token_id"]!);
        Assert.Equal(word + "</w>", (string)metadata["token_spelling"]!);
        Assert.Equal("existing", (string)metadata["token_kind"]!);

        await AssertPromptUsesLearnedRow(folder, learned, wholeWordId);

        // A concept saved before the identity was recorded binds the same way training did.
        metadata.Remove("token_id");
        metadata.Remove("TokenSpelling");
        metadata.Remove("TokenKind");
        File.WriteAllText(Path.Combine(folder, PersonalizedModel.MetadataFile), metadata.ToJsonString());
        await AssertPromptUsesLearnedRow(folder, learned, wholeWordId);

        // A recorded id this tokenizer does not give the token means another base model.
        metadata["token_id"] = wordStartId;
        File.WriteAllText(Path.Combine(folder, PersonalizedModel.MetadataFile), metadata.ToJsonString());
        using var other = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var error = await Assert.ThrowsAsync<ModelConfigException>(() => PersonalizedModel.LoadAsync(folder, other));
        Assert.Equal("token_id", error.Key);
        Assert.Null(other.Concept);
    }

    private static async Task AssertPromptUsesLearnedRow(string folder, torch.Tensor learned, int id)
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var original = pipeline.Components.TextEncoder.TokenEmbeddingWeight[id].detach().clone();
        Assert.False(TinyPipeline.BitEqual(original, learned), "training must have moved the row");
        await PersonalizedModel.LoadAsync(folder, pipeline);
        Assert.Equal(id, pipeline.ConceptEmbedding!.TokenIds[0]);
        using var ids = pipeline.Components.Tokenizer.EncodeToTensor([pipeline.ExpandPrompt("a photo of a {}")]);
        using var noGrad = torch.no_grad();
        using var embedded = pipeline.ConceptEmbedding.Embed(ids);
        Assert.True(TinyPipeline.BitEqual(embedded[0, 5], learned), "the prompt's [V] position must carry the learned row");
    }

    [Theory]
    [InlineData("<|endoftext|>")]
    [InlineData("<|startoftext|>")]
    public async Task SpecialTokensAreRefusedAsConceptTokens(string token)
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options());
        var error = await Assert.ThrowsAsync<ConceptTokenException>(() => pipeline.TrainAsync(TinyPipeline.Dog(token)));
        Assert.Equal(token, error.Token);
        Assert.Contains("special token", error.Message);
        // Refused before anything started: the same pipeline still trains a valid token.
        var model = await pipeline.TrainAsync(TinyPipeline.Dog());
        Assert.Equal(Concept.DefaultToken, model.Token);
    }

    [Fact]
    public void TheSd2PadTokenAndSpecialTokensAreRefusedEverywhere()
    {
        var sd2 = ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd2, "tokenizer"));
        Assert.Equal("!", sd2.PadToken);
        Assert.Throws<ConceptTokenException>(() => ConceptTokenIdentity.Resolve(sd2, "!"));
        var sd1 = Sd1Tokenizer();
        using var model = ClipTextModel.FromFolder(Path.Combine(TestPaths.TinySd1, "text_encoder"));
        Assert.Throws<ConceptTokenException>(() => ConceptEmbedding.Create(sd1, model, ConceptToken.Existing("<|endoftext|>")));
        Assert.Throws<ConceptTokenException>(() => ConceptEmbedding.Create(sd1, model, ConceptToken.New("<|startoftext|>", "dog")));
    }
}
