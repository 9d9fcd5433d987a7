using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Text;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Text;

public sealed class ConceptEmbeddingTests
{
    private static (ClipTokenizer Tokenizer, ClipTextModel Model) Load(string pipeline) =>
        (ClipTokenizer.FromFolder(Path.Combine(pipeline, "tokenizer")), ClipTextModel.FromFolder(Path.Combine(pipeline, "text_encoder")));

    private static Dictionary<string, byte[]> Snapshot(torch.nn.Module module) =>
        module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().cpu().bytes.ToArray());

    public static TheoryData<string> MethodCases()
    {
        var data = new TheoryData<string>();
        foreach (var fixture in FixtureRoots.Cases.Values.Where(c => c.Kind == "sd_pipeline" && c.HasTensor("method.stage1.initial_embedding")))
            data.Add(fixture.Name);
        return data;
    }

    /// <summary>The official AttnDreamBooth set-up (fixtures' method.stage1): new token, initial row, ids and the text
    /// encoder output with the [V] row spliced in.</summary>
    [Theory]
    [MemberData(nameof(MethodCases))]
    public void ReproducesTheOfficialNewTokenSetUp(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        var facts = fixture.Manifest;
        string token = facts.Fact("method.new_token").GetString()!;
        string initializer = facts.Fact("method.initializer_token").GetString()!;
        string prompt = facts.Fact("method.instance_prompt").GetString()!;
        var (tokenizer, model) = Load(fixture.PipelineFolder);
        using var reference = fixture.OpenReference();

        using var concept = ConceptEmbedding.Create(tokenizer, model, ConceptToken.New(token, initializer));
        Assert.Equal(facts.Fact("method.new_token_id").GetInt32(), concept.TokenIds[0]);
        using var expectedIds = reference.ReadTensor("method.stage1.input_ids");
        using var ids = tokenizer.EncodeToTensor(Enumerable.Repeat(prompt, (int)expectedIds.shape[0]).ToArray());
        Assert.True(ids.eq(expectedIds).all().item<bool>());

        using var positions = concept.FirstPositions(ids);
        using var expectedPositions = reference.ReadTensor("method.stage1.token_index_v");
        Assert.True(positions.eq(expectedPositions).all().item<bool>());
        Assert.Throws<ArgumentException>(() => concept.FirstPositions(tokenizer.EncodeToTensor(["a dog"])));

        using var initial = reference.ReadTensor("method.stage1.initial_embedding");
        Assert.True(concept.Weight.detach().bytes.SequenceEqual(initial.bytes));

        using var noGrad = torch.no_grad();
        using var output = concept.Encode(ids);
        using var expected = reference.ReadTensor("method.stage1.encoder_hidden_states");
        var tolerance = facts.Tensors["method.stage1.encoder_hidden_states"].Tolerance;
        var error = output.LastHiddenState.sub(expected).abs();
        var bound = expected.abs().mul(Kept(tolerance.Rtol)).add(Kept(tolerance.Atol), One);
        Assert.True(error.le(bound).all().item<bool>(), $"max abs error {error.max().item<float>()}");
    }

    [Fact]
    public void TrainingTouchesOnlyTheConceptRow()
    {
        var (tokenizer, model) = Load(TestPaths.TinySd1);
        model.SetRequiresGrad(false);
        var before = Snapshot(model);
        using var concept = ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("new_concept_v0", "dog"));
        Assert.Single(concept.parameters());
        using var initial = concept.Weight.detach().clone();

        using var ids = tokenizer.EncodeToTensor(["a photo of a new_concept_v0 dog", "new_concept_v0 on the beach"]);
        using var target = torch.randn([2, 77, model.HiddenSize], generator: new torch.Generator(7));
        using var optimizer = torch.optim.AdamW(concept.parameters(), lr: 1e-2, weight_decay: 1e-2);
        var losses = new List<float>();
        for (int step = 0; step < 5; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var output = concept.Encode(ids);
            var loss = torch.nn.functional.mse_loss(output.LastHiddenState, target);
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }

        var after = Snapshot(model);
        Assert.Equal(before.Keys, after.Keys);
        foreach (var (name, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[name]), $"{name} changed");
        Assert.All(model.parameters(), p => Assert.True(p.grad is null));
        Assert.False(concept.Weight.detach().allclose(initial));
        Assert.True(losses[^1] < losses[0], $"loss went from {losses[0]} to {losses[^1]}");
    }

    [Fact]
    public void ExistingTokenIsTrainedThroughTheParameterOnly()
    {
        var (tokenizer, model) = Load(TestPaths.TinySd1);
        model.SetRequiresGrad(false);
        int size = tokenizer.VocabularySize;
        using var concept = ConceptEmbedding.Create(tokenizer, model, ConceptToken.Existing("sks"));
        Assert.Equal(size, tokenizer.VocabularySize);
        Assert.Equal([48136], concept.TokenIds);
        Assert.Equal([ConceptTokenKind.Existing], concept.Kinds);

        using var ids = tokenizer.EncodeToTensor(["a photo of a sks dog"]);
        using (torch.no_grad())
        {
            using var spliced = concept.Embed(ids);
            using var plain = model.TokenEmbeddings(ids);
            Assert.True(spliced.bytes.SequenceEqual(plain.bytes));
        }

        var row = model.TokenEmbeddingWeight.detach()[48136].clone();
        using var optimizer = torch.optim.SGD(concept.parameters(), 0.5);
        using (var scope = torch.NewDisposeScope())
        {
            concept.Encode(ids).LastHiddenState.pow(Kept(2)).mean().backward();
            optimizer.step();
        }
        Assert.True(model.TokenEmbeddingWeight.detach()[48136].bytes.SequenceEqual(row.bytes));
        using (torch.no_grad())
        {
            using var spliced = concept.Embed(ids);
            using var plain = model.TokenEmbeddings(ids);
            var differs = spliced.ne(plain).any(-1)[0];
            Assert.Equal([false, false, false, false, false, true, false, false], differs[..8].data<bool>().ToArray());
        }
    }

    [Fact]
    public async Task SaveThenLoadRoundTripsExactly()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File(LearnedEmbeddings.DiffusersFileName);
        var (tokenizer, model) = Load(TestPaths.TinySd2);
        using var concept = ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("new_concept_v0", "dog"), ConceptToken.Existing("sks", "cat"));
        using (torch.no_grad()) concept.Weight.add_(torch.randn(concept.Weight.shape, generator: new torch.Generator(3)), One);
        await concept.SaveAsync(path);

        using (var file = SafetensorsFile.Open(path))
        {
            Assert.Equal(["new_concept_v0", "sks"], file.Names);
            Assert.Equal([1L, model.HiddenSize], file.Entries["sks"].Shape);
        }

        var (tokenizer2, model2) = Load(TestPaths.TinySd2);
        using var loaded = ConceptEmbedding.Load(path, tokenizer2, model2);
        Assert.Equal(concept.Tokens, loaded.Tokens);
        Assert.Equal(concept.TokenIds, loaded.TokenIds);
        Assert.Equal([ConceptTokenKind.New, ConceptTokenKind.Existing], loaded.Kinds);
        Assert.True(concept.Weight.detach().bytes.SequenceEqual(loaded.Weight.detach().bytes));

        using var ids = tokenizer.EncodeToTensor(["a sks new_concept_v0 dog"]);
        using var noGrad = torch.no_grad();
        using var a = concept.Embed(ids);
        using var b = loaded.Embed(ids);
        Assert.True(a.bytes.SequenceEqual(b.bytes));
    }

    [Fact]
    public void ReadsVectorMultiVectorAndA1111Layouts()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var (tokenizer, model) = Load(TestPaths.TinySd1);
        int hidden = model.HiddenSize;
        var generator = new torch.Generator(11);

        string single = dir.File("single.safetensors");
        SafetensorsWriter.Write(single, new Dictionary<string, torch.Tensor> { ["<cat-toy>"] = torch.randn([hidden], generator: generator) });
        using var one = ConceptEmbedding.Load(single, tokenizer, model);
        Assert.Equal(["<cat-toy>"], one.Tokens);
        Assert.Equal([1L, hidden], one.Weight.shape);

        string multi = dir.File("multi.safetensors");
        SafetensorsWriter.Write(multi, new Dictionary<string, torch.Tensor> { ["<style>"] = torch.randn([3, hidden], generator: generator) });
        using var three = ConceptEmbedding.Load(multi, tokenizer, model);
        Assert.Equal(["<style>", "<style>_1", "<style>_2"], three.Tokens);
        Assert.Equal("in <style> <style>_1 <style>_2 style", three.ExpandPrompt("in <style> style"));
        Assert.Equal(5, tokenizer.Encode(three.ExpandPrompt("<style>")).Count);

        var stored = torch.randn([2, hidden], generator: generator);
        string a1111 = dir.File("my-embedding.safetensors");
        SafetensorsWriter.Write(a1111, new Dictionary<string, torch.Tensor> { ["emb_params"] = stored });
        using var fromA1111 = ConceptEmbedding.Load(a1111, tokenizer, model);
        Assert.Equal(["my-embedding", "my-embedding_1"], fromA1111.Tokens);
        Assert.True(fromA1111.Weight.detach().bytes.SequenceEqual(stored.bytes));

        string legacy = dir.File("legacy.safetensors");
        SafetensorsWriter.Write(legacy, new Dictionary<string, torch.Tensor> { ["string_to_param.*"] = stored });
        using var renamed = ConceptEmbedding.Load(legacy, tokenizer, model, token: "<old>");
        Assert.Equal(["<old>", "<old>_1"], renamed.Tokens);
    }

    [Fact]
    public void ClearErrors()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var (tokenizer, model) = Load(TestPaths.TinySd1);
        int size = tokenizer.VocabularySize;

        Assert.Throws<ConceptTokenException>(() => ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("sks", "dog")));
        var empty = Assert.Throws<ConceptTokenException>(() => ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("<v>", "\u200b ")));
        Assert.Equal(0, empty.TokenCount);
        Assert.Throws<ConceptTokenException>(() => ConceptEmbedding.Create(tokenizer, model, ConceptToken.Existing("two words")));
        Assert.Throws<ArgumentException>(() => ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("<w>", "dog"), ConceptToken.New("<w>", "cat")));
        Assert.Equal(size, tokenizer.VocabularySize);

        string wide = dir.File("wide.safetensors");
        SafetensorsWriter.Write(wide, new Dictionary<string, torch.Tensor> { ["<wide>"] = torch.zeros(1, model.HiddenSize + 16) });
        var mismatch = Assert.Throws<InvalidWeightsException>(() => ConceptEmbedding.Load(wide, tokenizer, model));
        Assert.Equal(model.HiddenSize, mismatch.ExpectedWidth);
        Assert.Equal(size, tokenizer.VocabularySize);

        Assert.Throws<InvalidWeightsException>(() => LearnedEmbeddings.Read(dir.File("learned_embeds.bin")));
        string sdxl = dir.File("sdxl.safetensors");
        SafetensorsWriter.Write(sdxl, new Dictionary<string, torch.Tensor> { ["clip_l"] = torch.zeros(1, 768), ["clip_g"] = torch.zeros(1, 1280) });
        Assert.Throws<InvalidWeightsException>(() => LearnedEmbeddings.Read(sdxl));

        tokenizer.AddToken("<stray>");
        using var concept = ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("<v>", "dog"));
        using var ids = tokenizer.EncodeToTensor(["a <stray> <v>"]);
        Assert.Throws<ArgumentOutOfRangeException>(() => concept.Embed(ids));
    }

    [Fact]
    public void WriteIntoBakesTheRowsIntoTheTable()
    {
        var (tokenizer, model) = Load(TestPaths.TinySd1);
        using var concept = ConceptEmbedding.Create(tokenizer, model, ConceptToken.New("new_concept_v0", "dog"));
        using (torch.no_grad()) concept.Weight.mul_(Kept(1.5));
        using var ids = tokenizer.EncodeToTensor(["a photo of a new_concept_v0 dog"]);
        using var noGrad = torch.no_grad();
        using var spliced = concept.Encode(ids);
        concept.to(torch.float64);
        Assert.Equal(torch.float64, concept.Weight.dtype);
        Assert.Equal(torch.float64, concept.parameters().Single().dtype);
        concept.to(torch.float32);
        concept.WriteInto(model);
        Assert.Equal(tokenizer.VocabularySize, model.TokenEmbeddingCount);
        using var plain = model.Forward(ids);
        Assert.True(plain.LastHiddenState.bytes.SequenceEqual(spliced.LastHiddenState.bytes));
    }
}
