using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class StageEndValidationTests
{

    [Fact]
    public async Task ValidationAfterStagesRendersAtTheEndOfExactlyThoseStagesAndLeavesTrainingUnchanged()
    {
        var plan = TinyPipeline.Plan(2, 2, 2);
        var withRenders = TinyPipeline.Options() with
        {
            ValidationPrompts = ["a photo of {}", "a {} on the beach"],
            ValidationAfterStages = [TrainingStage.Embedding, TrainingStage.CrossAttention],
            ValidationGeneration = new GenerationOptions { Steps = 2, Seed = 4, BatchSize = 2, HeatmapTokens = ["{}"] },
        };
        var progress = new RecordingProgress<TrainingProgress>();
        IReadOnlyList<double> losses;
        using (var pipeline = TinyPipeline.Build(plan, withRenders))
        {
            losses = (await pipeline.TrainAsync(TinyPipeline.Dog(), progress)).LossHistory.ToArray();
        }

        Assert.Equal(6, progress.Items.Count);
        var rendered = progress.Items.Where(p => p.ValidationImages is not null).ToList();
        Assert.Equal([(TrainingStage.Embedding, 2), (TrainingStage.CrossAttention, 2)], rendered.Select(p => (p.Stage, p.Step)));
        foreach (var p in rendered)
        {
            Assert.Equal(p.StageSteps, p.Step);
            var images = p.ValidationImages!;
            Assert.Equal(4, images.Count);
            Assert.Equal(["a photo of new_concept_v0 dog", "a photo of new_concept_v0 dog", "a new_concept_v0 dog on the beach", "a new_concept_v0 dog on the beach"],
                images.Select(i => i.Prompt));
            Assert.Equal([4L, 5, 4, 5], images.Select(i => i.Seed));
            Assert.All(images, i => Assert.True(i.Heatmaps.ContainsKey("new_concept_v0")));  // "{}" is stored under the identifier
        }
        // Stage 2 changed the U-Net, so its renders differ from stage 1's.
        Assert.NotEqual(rendered[0].ValidationImages![0].Image.Pixels, rendered[1].ValidationImages![0].Image.Pixels);

        // Rendering draws from generators of its own: the training run is the same without the renders.
        using var plain = TinyPipeline.Build(plan, TinyPipeline.Options());
        var plainLosses = (await plain.TrainAsync(TinyPipeline.Dog())).LossHistory;
        Assert.Equal(plainLosses, losses);
    }

    [Fact]
    public void AnUndefinedStageIsRejected()
    {
        var options = new TrainingOptions { ValidationAfterStages = [(TrainingStage)7] };
        Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
    }
}
