using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using RgbImage = AttnDreamBooth.Imaging.RgbImage;

namespace AttnDreamBooth.Tests.Evaluation;

/// <summary><see cref="ConceptEvaluator.EvaluateAsync"/> end to end on the tiny SD 1.x model with a trained-and-reloaded
/// concept and the tiny CLIP model: 2 prompts × 2 images, 3 sampling steps.</summary>
[Collection(TinyConceptCollection.Name)]
public sealed class ConceptEvaluatorEvaluateTests(TinyConcept concept)
{
    private static readonly string[] Prompts = ["a {} on the beach", "a photo of {}"];

    private static ConceptEvaluationOptions Options(long seed, int imagesPerPrompt = 2) => new()
    {
        Protocol = EvaluationProtocol.WithPrompts(Prompts) with { ImagesPerPrompt = imagesPerPrompt, InferenceSteps = 3, Seed = seed },
    };

    private ConceptEvaluator Evaluator => new(concept.Clip, ClipImageProcessor.FromFolder(TinyConcept.ClipFolder));

    [Fact]
    public async Task GeneratesWithTheSeedScheduleAndScoresPerPromptDeterministically()
    {
        var reports = new List<EvaluationProgress>();
        var first = await Evaluator.EvaluateAsync(concept.Pipeline, concept.Sources, Options(7), new InlineProgress<EvaluationProgress>(reports.Add));

        // Structure: per prompt, per image, in protocol order; the text score sees the prompt without the identifier only.
        Assert.Equal((TinyConcept.Token, TinyConcept.Category), (first.Token, first.Category));
        Assert.Equal(2, first.PerPrompt.Count);
        Assert.Equal((concept.Sources.Count, 4), (first.SourceCount, first.GeneratedCount));
        Assert.Equal(["a sks dog on the beach", "a photo of sks dog"], first.PerPrompt.Select(p => p.Prompt));
        Assert.Equal(["a  dog on the beach", "a photo of  dog"], first.PerPrompt.Select(p => p.TextPrompt));
        for (int p = 0; p < 2; p++)
        {
            var scores = first.PerPrompt[p];
            Assert.Equal(2, scores.ImageIdentity.Count);
            Assert.Equal(2, scores.ImageText.Count);
            Assert.Equal(scores.ImageIdentity.Average(), scores.Identity, 12);
            Assert.All(scores.ImageIdentity.Concat(scores.ImageText), v => Assert.InRange(v, -1.0, 1.0));
            // The seed is reset for every prompt: image i of every prompt starts from seed 7 + i.
            Assert.Equal([7L, 8L], first.Images[p].Select(i => i.Seed));
            Assert.All(first.Images[p], i => Assert.Equal(scores.Prompt, i.Prompt));
        }
        Assert.Equal(first.PerPrompt.Average(p => p.Identity), first.Identity, 12);
        Assert.Equal(first.PerPrompt.Average(p => p.Text), first.Text, 12);
        var generating = reports.Where(r => r.Phase == EvaluationPhase.GeneratingImages).ToArray();
        Assert.Equal([0, 1, 2, 3, 4], generating.Select(r => r.Completed));
        Assert.All(generating, r => Assert.Equal(4, r.Total));
        Assert.Equal(EvaluationPhase.Completed, reports[^1].Phase);

        // The images are what scoring them directly gives.
        var rescored = Evaluator.Score(new ConceptScoringRequest(concept.Sources,
            first.Images.Select(set => new GeneratedImageSet(set[0].Prompt, set.Select(g => g.Image).ToArray())).ToArray(), TinyConcept.Token));
        Assert.Equal(first.Identity, rescored.Identity, 12);
        Assert.Equal(first.Text, rescored.Text, 12);

        // Same seed, same everything.
        var again = await Evaluator.EvaluateAsync(concept.Pipeline, concept.Sources, Options(7));
        Assert.Equal(first.Identity, again.Identity);
        Assert.Equal(first.Text, again.Text);
        Assert.Equal(first.PerPrompt.SelectMany(p => p.ImageIdentity.Concat(p.ImageText)), again.PerPrompt.SelectMany(p => p.ImageIdentity.Concat(p.ImageText)));

        // Seed 8 with one image per prompt renders exactly image 1 of the seed-7 run, in larger generation batches too.
        var shifted = await Evaluator.EvaluateAsync(concept.Pipeline, concept.Sources, Options(8, imagesPerPrompt: 1));
        for (int p = 0; p < 2; p++)
        {
            Assert.Equal(first.Images[p][1].Image.Pixels, shifted.Images[p][0].Image.Pixels);
            Assert.Equal(first.PerPrompt[p].ImageIdentity[1], shifted.PerPrompt[p].ImageIdentity[0], 6);
        }
        Assert.NotEqual(first.Images[0][0].Image.Pixels, first.Images[0][1].Image.Pixels);
    }

    [Fact]
    public async Task DefaultsToThePaperProtocolForTheCategoryAndCancels()
    {
        using var cts = new CancellationTokenSource();
        var reports = new List<EvaluationProgress>();
        var progress = new InlineProgress<EvaluationProgress>(r =>
        {
            reports.Add(r);
            cts.Cancel();
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Evaluator.EvaluateAsync(concept.Pipeline, concept.Sources, null, progress, cts.Token));
        var paper = EvaluationProtocol.Paper(TinyConcept.Category);
        var only = Assert.Single(reports);
        Assert.Equal(EvaluationPhase.GeneratingImages, only.Phase);
        Assert.Equal(paper.Prompts.Count * paper.ImagesPerPrompt, only.Total);
        Assert.Equal(DreamBoothPrompts.Expand(DreamBoothPrompts.LiveSubject[0], TinyConcept.Token, TinyConcept.Category), only.Prompt);

        // Cancelled in the middle of sampling, the pipeline is released and usable again.
        using var mid = new CancellationTokenSource();
        var midProgress = new InlineProgress<EvaluationProgress>(r => { if (r.Completed == 1) mid.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Evaluator.EvaluateAsync(concept.Pipeline, concept.Sources, Options(1), midProgress, mid.Token));
        var images = await concept.Pipeline.GenerateAsync("a {}", new GenerationOptions { Steps = 1 });
        Assert.Single(images);
    }

    [Fact]
    public async Task RejectsWhatCannotBeEvaluated()
    {
        var evaluator = Evaluator;
        await Assert.ThrowsAsync<ArgumentException>(() => evaluator.EvaluateAsync(concept.Pipeline, []));
        await Assert.ThrowsAsync<ArgumentException>(() => evaluator.EvaluateAsync(concept.Pipeline, concept.Sources,
            new ConceptEvaluationOptions { Protocol = EvaluationProtocol.WithPrompts(Prompts) with { Prompts = ["a dog"] } }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => evaluator.EvaluateAsync(concept.Pipeline, concept.Sources, Options(0) with { GenerationBatchSize = 0 }));
        await Assert.ThrowsAsync<ArgumentException>(() => evaluator.EvaluateAsync(concept.Pipeline, concept.Sources,
            new ConceptEvaluationOptions { Protocol = EvaluationProtocol.WithPrompts(Prompts) with { Sampler = "EulerDiscreteScheduler" } }));
        using var basePipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        await Assert.ThrowsAsync<InvalidOperationException>(() => evaluator.EvaluateAsync(basePipeline, concept.Sources, Options(0)));
        using var imageOnly = ClipModel.FromFolder(TinyConcept.ClipFolder, textTower: null);
        await Assert.ThrowsAsync<InvalidOperationException>(() => new ConceptEvaluator(imageOnly).EvaluateAsync(concept.Pipeline, concept.Sources, Options(0)));
    }
}
