using AttnDreamBooth.Evaluation;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using TorchSharp;

namespace AttnDreamBooth.Tests.Evaluation;

public sealed class ConceptEvaluatorTests
{
    public static TheoryData<string> ClipCases() => ClipImageProcessorTests.ClipCases();

    /// <summary>Stands in for the CLIP text encoder: the reference pooler outputs, looked up by prompt.</summary>
    private sealed class ReferenceTextTower(IReadOnlyDictionary<string, torch.Tensor> pooled) : IClipTextTower
    {
        public List<IReadOnlyList<string>> Calls { get; } = [];

        public torch.Tensor EncodePooled(IReadOnlyList<string> prompts, torch.Device device)
        {
            Calls.Add(prompts);
            return torch.stack(prompts.Select(p => pooled[Normalise(p)])).to(device);
        }

        public void Dispose() { }
    }

    // The tokenizer collapses the doubled space that removing the identifier leaves.
    private static string Normalise(string prompt) => string.Join(' ', prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    private static (ConceptEvaluator Evaluator, ConceptScoringRequest Request, ReferenceTextTower Tower, FixtureCase Fixture) Setup(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        var facts = ClipFixture.Scores(fixture);
        var prompts = ClipFixture.StringArray(fixture.Manifest.Fact("prompts"));
        using var reference = fixture.OpenReference();
        using var pooledAll = reference.ReadTensor("clip.text.pooler_output");
        var pooled = prompts.Select((p, i) => (p, pooledAll[i].clone())).ToDictionary(x => Normalise(x.p), x => x.Item2);
        var tower = new ReferenceTextTower(pooled);
        var model = ClipModel.FromFolder(ClipFixture.ModelFolder(fixture), (_, _) => tower);
        var images = ClipFixture.Images(fixture);
        var generated = ClipFixture.LongArray(facts.GetProperty("generated_images"));
        var sources = ClipFixture.LongArray(facts.GetProperty("source_images"));
        var promptIndex = ClipFixture.LongArray(facts.GetProperty("generated_prompt_index"));
        string token = facts.GetProperty("concept_token").GetString()!;
        var withToken = ClipFixture.StringArray(facts.GetProperty("prompts_with_token"));
        // One set per generated image, in order; prompts_with_token lists the generated images' prompts.
        var sets = generated.Select((g, j) => new GeneratedImageSet(withToken[j], [images[(int)g]])).ToArray();
        Assert.Equal(promptIndex.Select(i => Normalise(prompts[i])), withToken.Select(p => Normalise(ClipScores.RemoveIdentifier(p, token))));
        var request = new ConceptScoringRequest(sources.Select(s => images[(int)s]).ToArray(), sets, token) { BatchSize = 1 };
        return (new ConceptEvaluator(model, ClipImageProcessor.FromFolder(ClipFixture.ModelFolder(fixture))), request, tower, fixture);
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public async Task ScoresFromImagesMatchTheReference(string caseName)
    {
        var (evaluator, request, tower, fixture) = Setup(caseName);
        using var model = evaluator.Clip;
        var reports = new List<EvaluationProgress>();
        var scores = await evaluator.ScoreAsync(request, new InlineProgress<EvaluationProgress>(reports.Add));

        using var reference = fixture.OpenReference();
        using var identity = reference.ReadTensor("clip.scores.identity");
        using var text = reference.ReadTensor("clip.scores.text");
        using var pairs = reference.ReadTensor("clip.scores.text_pairs");
        Assert.Equal(identity.item<float>(), scores.Identity, 1e-4);
        Assert.Equal(text.item<float>(), scores.Text, 1e-4);
        var pairValues = pairs.data<float>().ToArray();
        Assert.Equal(pairValues.Length, scores.PerPrompt.Count);
        for (int i = 0; i < pairValues.Length; i++) Assert.Equal(pairValues[i], scores.PerPrompt[i].Text, 1e-4);
        Assert.Equal(scores.Identity, scores.PerPrompt.Average(p => p.Identity), 1e-9);
        Assert.Equal(request.SourceImages.Count, scores.SourceCount);
        Assert.Contains("  ", scores.PerPrompt[0].TextPrompt, StringComparison.Ordinal);

        // The prompts reach the text tower with only the identifier removed.
        Assert.Equal(request.Generated.Select(g => g.Prompt.Replace(request.IdentifierToken, "", StringComparison.Ordinal)), Assert.Single(tower.Calls));
        Assert.Equal(EvaluationPhase.Completed, reports[^1].Phase);
        Assert.Contains(reports, r => r.Phase == EvaluationPhase.EmbeddingGeneratedImages && r.Completed == r.Total);
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public async Task TheCompleteModelFromItsFolderReproducesTheReferenceScores(string caseName)
    {
        var (standIn, request, _, fixture) = Setup(caseName);
        standIn.Clip.Dispose();
        using var model = ClipTextTower.LoadModel(ClipFixture.ModelFolder(fixture));
        Assert.IsType<ClipTextTower>(model.TextTower);
        var scores = await new ConceptEvaluator(model, ClipImageProcessor.FromFolder(ClipFixture.ModelFolder(fixture))).ScoreAsync(request);

        using var reference = fixture.OpenReference();
        using var identity = reference.ReadTensor("clip.scores.identity");
        using var text = reference.ReadTensor("clip.scores.text");
        using var pairs = reference.ReadTensor("clip.scores.text_pairs");
        Assert.Equal(identity.item<float>(), scores.Identity, 1e-4);
        Assert.Equal(text.item<float>(), scores.Text, 1e-4);
        var pairValues = pairs.data<float>().ToArray();
        for (int i = 0; i < pairValues.Length; i++) Assert.Equal(pairValues[i], scores.PerPrompt[i].Text, 1e-4);
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public async Task CancellationAndBadRequestsAreReported(string caseName)
    {
        var (evaluator, request, _, _) = Setup(caseName);
        using var model = evaluator.Clip;
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => evaluator.ScoreAsync(request, null, cts.Token));
        Assert.Throws<ArgumentException>(() => evaluator.Score(request with { IdentifierToken = "zzz" }));
        Assert.Throws<ArgumentException>(() => evaluator.Score(request with { SourceImages = [] }));
        Assert.Throws<ArgumentException>(() => evaluator.Score(request with { Generated = [new GeneratedImageSet("a sks x", [])] }));
        using var imageOnly = ClipModel.FromFolder(ClipFixture.ModelFolder(FixtureRoots.Get(caseName)), textTower: null);
        Assert.Throws<InvalidOperationException>(() => new ConceptEvaluator(imageOnly).Score(request));
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public void ModelNamesAndShapesEqualTheCheckpoint(string caseName)
    {
        string folder = ClipFixture.ModelFolder(FixtureRoots.Get(caseName));
        using var model = new ClipModel(ClipModelConfig.Load(Path.Combine(folder, "config.json")), ComponentFactories.Meta);
        using var source = StateDictSource.OpenComponent(folder);
        var expected = source.Names.Where(n => !ClipModel.IsTextModelKey(n)).ToDictionary(n => n, source.ShapeOf);
        var actual = model.state_dict().ToDictionary(p => p.Key, p => p.Value.shape);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        Assert.All(expected, p => Assert.Equal(p.Value, actual[p.Key]));
        var vision = new ClipVisionModel(model.Config.Vision, ComponentFactories.Meta);
        Assert.Equal(expected.Keys.Where(k => k.StartsWith("vision_model.", StringComparison.Ordinal)).Order(), vision.state_dict().Keys.Order());
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public void TextWeightsLoadIntoATextModuleAndTheEffectiveConfigDescribesThem(string caseName)
    {
        string folder = ClipFixture.ModelFolder(FixtureRoots.Get(caseName));
        var config = ClipModelConfig.Load(Path.Combine(folder, "config.json")).EffectiveTextConfig();
        using var source = StateDictSource.OpenComponent(folder);
        var textKeys = source.Names.Where(ClipModel.IsTextModelKey).ToArray();
        using var module = new TextBag(textKeys, source);
        var report = ClipModel.LoadTextModelWeights(module, folder, k => k.Replace('.', '_'));
        Assert.True(report.IsExact, report.Describe());
        using var expected = source.Read("text_model.final_layer_norm.weight");
        Assert.True(expected.bytes.SequenceEqual(module.state_dict()["text_model_final_layer_norm_weight"].bytes));
        int hidden = config.GetInt("hidden_size");
        Assert.Equal([config.GetInt("vocab_size"), hidden], source.ShapeOf("text_model.embeddings.token_embedding.weight"));
        Assert.Equal([config.GetInt("max_position_embeddings"), hidden], source.ShapeOf("text_model.embeddings.position_embedding.weight"));
        Assert.Equal(config.GetInt("num_hidden_layers"), textKeys.Where(k => k.EndsWith("layer_norm1.weight", StringComparison.Ordinal)).Count());
        Assert.Equal([config.GetInt("intermediate_size"), hidden], source.ShapeOf("text_model.encoder.layers.0.mlp.fc1.weight"));
    }

    private sealed class TextBag : torch.nn.Module
    {
        public TextBag(IEnumerable<string> names, IStateDictSource source) : base("text")
        {
            foreach (string name in names)
                register_parameter(name.Replace('.', '_'), new TorchSharp.Modules.Parameter(torch.zeros(source.ShapeOf(name)), requires_grad: false));
        }
    }

    [Fact]
    public void ConfigDefaultsAreTheTransformersOnes()
    {
        var config = ClipModelConfig.FromReader(ConfigReader.Parse("{}"));
        Assert.Equal((768, 12, 12, 32, 224, "quick_gelu"), (config.Vision.HiddenSize, config.Vision.NumHiddenLayers, config.Vision.NumAttentionHeads, config.Vision.PatchSize, config.Vision.ImageSize, config.Vision.HiddenAct));
        Assert.Equal((512, 512), (config.TextHiddenSize, config.ProjectionDim));
        var stored = ClipModelConfig.FromReader(ConfigReader.Parse("{\"text_config\": {\"hidden_size\": 12}}"));
        Assert.Contains("\"hidden_size\":12", stored.EffectiveTextConfigJson(), StringComparison.Ordinal);
        Assert.Contains("\"num_attention_heads\":8", stored.EffectiveTextConfigJson(), StringComparison.Ordinal);
        Assert.Throws<ModelConfigException>(() => ClipVisionConfig.FromReader(ConfigReader.Parse("{\"image_size\": 100, \"patch_size\": 32}")));
    }

}
