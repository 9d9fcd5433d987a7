using AttnDreamBooth.Personalization;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class PersonalizationMethodTrainingTests
{
    public enum UNetScope { None, CrossAttention, All }

    // What each method must train, written out rather than derived from its plan so that a wrong preset fails here.
    public static TheoryData<PersonalizationMethod, bool, UNetScope, string, bool, bool> Expectations() => new()
    {
        // method, embedding learned, U-Net tensors trained, token, attention term on, prior term on
        { PersonalizationMethod.AttnDreamBooth, true, UNetScope.All, Concept.DefaultToken, true, false },
        { PersonalizationMethod.AttnDreamBoothFast, true, UNetScope.All, Concept.DefaultToken, true, false },
        { PersonalizationMethod.TextualInversion, true, UNetScope.None, Concept.DefaultToken, false, false },
        { PersonalizationMethod.DreamBooth, false, UNetScope.All, "sks", false, true },
        { PersonalizationMethod.TextualInversionDreamBooth, true, UNetScope.All, Concept.DefaultToken, false, true },
        { PersonalizationMethod.WithoutEmbeddingStage, false, UNetScope.All, Concept.DefaultToken, true, false },
        { PersonalizationMethod.WithoutCrossAttentionStage, true, UNetScope.All, Concept.DefaultToken, true, false },
        { PersonalizationMethod.WithoutUNetStage, true, UNetScope.CrossAttention, Concept.DefaultToken, true, false },
        { PersonalizationMethod.WithoutRegularization, true, UNetScope.All, Concept.DefaultToken, false, false },
    };

    [Theory]
    [MemberData(nameof(Expectations))]
    public async Task Each_method_trains_exactly_its_parameters(PersonalizationMethod method, bool embeddingLearned, UNetScope unetScope,
        string token, bool attentionTerm, bool priorTerm)
    {
        var plan = TinyMethods.Plan(method);
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(TinyPipeline.Options()).Build();
        var unetBefore = TinyPipeline.Snapshot(pipeline.Components.UNet);
        var textBefore = TinyPipeline.Snapshot(pipeline.Components.TextEncoder);
        var vaeBefore = TinyPipeline.Snapshot(pipeline.Components.Vae);
        var progress = new RecordingProgress<TrainingProgress>();
        var classProgress = new RecordingProgress<ClassImageProgress>();

        var model = await pipeline.TrainAsync(TinyPipeline.Dog(), progress, classImageProgress: classProgress);

        Assert.Equal(token, model.Token);
        foreach (var (name, after) in pipeline.Components.UNet.state_dict())
        {
            bool changed = !TinyPipeline.BitEqual(unetBefore[name], after);
            bool expected = unetScope switch
            {
                UNetScope.All => true,
                UNetScope.CrossAttention => StageParameters.IsTrained(TrainingStage.CrossAttention, name),
                _ => false,
            };
            Assert.True(changed == expected, $"{method}: U-Net tensor {name} {(changed ? "changed" : "did not change")}");
        }
        // The embedding table itself never changes (the concept row is spliced in), nor does anything else of the text encoder or the VAE.
        Assert.All(pipeline.Components.TextEncoder.state_dict(), p => Assert.True(TinyPipeline.BitEqual(textBefore[p.Key], p.Value), $"{method}: text encoder {p.Key} changed"));
        Assert.All(pipeline.Components.Vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(vaeBefore[p.Key], p.Value), $"{method}: VAE {p.Key} changed"));

        // The [V] row starts from the category word, except DreamBooth's, which is the rare token's own row.
        var tokenizer = pipeline.Components.Tokenizer;
        var initialId = token == "sks" ? tokenizer.EncodeWithoutSpecialTokens("sks")[0] : tokenizer.EncodeWithoutSpecialTokens("dog")[0];
        var initial = pipeline.Components.TextEncoder.TokenEmbeddingWeight[initialId];
        Assert.Equal(!embeddingLearned, TinyPipeline.BitEqual(initial, model.EmbeddingVector()));

        Assert.Equal(plan.TotalSteps, progress.Items.Count);
        Assert.Equal(plan.TotalSteps, model.LossHistory.Count);
        Assert.All(progress.Items, p =>
        {
            Assert.Equal(attentionTerm, p.AttentionLoss > 0);
            double weight = plan[p.Stage].PriorLossWeight;
            Assert.Equal(priorTerm && p.Stage == TrainingStage.UNet, p.PriorLoss > 0);
            Assert.Equal(p.MseLoss + p.AttentionLoss + weight * p.PriorLoss, p.Loss, 12);
        });
        // Class images are prepared (and reported) only for the methods that use them.
        Assert.Equal(priorTerm, classProgress.Items.Count > 0);
        if (priorTerm) Assert.Equal(2, classProgress.Items[^1].Completed);
        Assert.All(pipeline.Components.UNet.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public async Task An_own_embedding_needs_an_existing_token()
    {
        var plan = TinyMethods.Plan(PersonalizationMethod.DreamBooth) with { IdentifierToken = null };
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(TinyPipeline.Options()).Build();
        var classProgress = new RecordingProgress<ClassImageProgress>();
        var error = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.TrainAsync(TinyPipeline.Dog(), classImageProgress: classProgress));
        Assert.Contains("new_concept_v0", error.Message);
        Assert.Contains("sks", error.Message);
        // Refused before any work: no class image was generated and the pipeline can still train.
        Assert.Empty(classProgress.Items);
        Assert.Null(pipeline.Concept);
        var model = await pipeline.TrainAsync(TinyPipeline.Dog("sks"));
        Assert.Equal("sks", model.Token);
    }

    [Fact]
    public void WithMethod_uses_the_preset_plan()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithMethod(PersonalizationMethod.TextualInversionDreamBooth).Build();
        Assert.Equal(StagePlan.TextualInversionDreamBooth, pipeline.Plan);
    }
}
