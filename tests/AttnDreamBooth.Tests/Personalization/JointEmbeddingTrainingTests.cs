using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary><see cref="StageOptions.TrainEmbedding"/>: a U-Net stage that also trains the concept's embedding, and the
/// stage-end embeddings the progress reports.</summary>
public sealed class JointEmbeddingTrainingTests
{
    public static TheoryData<string> Plans() => new() { "ti-db preset", "paper", "stage 2 joint, no weight decay", "lora stage 3 joint" };

    private static StagePlan PlanFor(string name) => name switch
    {
        "ti-db preset" => TinyMethods.Plan(PersonalizationMethod.TextualInversionDreamBooth),
        "paper" => TinyPipeline.Plan(),
        // Without weight decay the embedding can only move through its gradient, so moving proves the gradient reaches it.
        "stage 2 joint, no weight decay" => TinyPipeline.Plan().With(TrainingStage.CrossAttention,
            s => s with { TrainEmbedding = true, Optimizer = AdamWOptions.Default with { WeightDecay = 0 } }),
        "lora stage 3 joint" => LoraTrainingTests.Plan(2, 2, 2).With(TrainingStage.UNet, s => s with { TrainEmbedding = true }),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Plans))]
    public async Task The_embedding_moves_in_exactly_the_stages_that_train_it(string name)
    {
        var plan = PlanFor(name);
        using var dir = TestPaths.CreateTempDirectory();
        // Releasing the text encoder is asked for: a stage that trains the embedding still needs it, so it must stay.
        var options = TinyPipeline.Options() with { ReleaseTextEncoderDuringTraining = true, ClassImageDirectory = dir.File("class") };
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(options).Build();
        var tokenizer = pipeline.Components.Tokenizer;
        float[] initial = pipeline.Components.TextEncoder.TokenEmbeddingWeight[tokenizer.EncodeWithoutSpecialTokens("dog")[0]]
            .detach().cpu().data<float>().ToArray();
        var progress = new RecordingProgress<TrainingProgress>();

        var model = await pipeline.TrainAsync(TinyPipeline.Dog(), progress);

        var ends = progress.Items.Where(p => p.StageEndEmbedding is not null).ToArray();
        Assert.Equal(plan.EnabledStages, ends.Select(p => p.Stage));
        Assert.All(ends, p => Assert.Equal(p.StageSteps, p.Step));
        Assert.All(progress.Items.Where(p => p.Step < p.StageSteps), p => Assert.Null(p.StageEndEmbedding));
        var before = initial;
        foreach (var end in ends)
        {
            var after = end.StageEndEmbedding!.ToArray();
            Assert.Equal(initial.Length, after.Length);
            bool moved = !before.SequenceEqual(after);
            Assert.True(moved == plan.TrainsEmbedding(end.Stage), $"{name}: stage {end.Stage} {(moved ? "moved" : "did not move")} the embedding");
            before = after;
        }
        Assert.Equal(model.EmbeddingVector().data<float>().ToArray(), ends[^1].StageEndEmbedding);
    }

    [Fact]
    public void Only_the_ti_db_preset_trains_the_embedding_after_stage_1()
    {
        foreach (var method in Enum.GetValues<PersonalizationMethod>())
        {
            var plan = StagePlan.For(method);
            bool joint = plan.EnabledStages.Any(s => s != TrainingStage.Embedding && plan.TrainsEmbedding(s));
            Assert.True(joint == (method == PersonalizationMethod.TextualInversionDreamBooth), $"{method}");
        }
        Assert.Contains("\"train_embedding\": true", StagePlan.TextualInversionDreamBooth.ToJson(), StringComparison.Ordinal);
        Assert.Equal(StagePlan.TextualInversionDreamBooth, StagePlan.FromJson(StagePlan.TextualInversionDreamBooth.ToJson()));
    }
}
