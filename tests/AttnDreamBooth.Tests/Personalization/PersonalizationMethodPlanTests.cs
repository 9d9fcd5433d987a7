using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class PersonalizationMethodPlanTests
{
    [Fact]
    public void Every_method_has_a_valid_plan_with_its_name_round_tripping()
    {
        Assert.Equal(Enum.GetValues<PersonalizationMethod>(), PersonalizationMethods.All);
        foreach (var method in PersonalizationMethods.All)
        {
            var plan = StagePlan.For(method);
            plan.Validate();
            Assert.Equal(method, PersonalizationMethods.Parse(method.Name()));
            Assert.Equal(method, PersonalizationMethods.Parse(method.ToString().ToUpperInvariant()));
            Assert.Equal(plan, StagePlan.FromJson(plan.ToJson()));
        }
        Assert.Equal(PersonalizationMethods.All.Count, PersonalizationMethods.All.Select(m => m.Name()).Distinct().Count());
        Assert.Equal(StagePlan.Paper, StagePlan.For(PersonalizationMethod.AttnDreamBooth));
        Assert.Equal(StagePlan.Fast, StagePlan.For(PersonalizationMethod.AttnDreamBoothFast));
    }

    [Fact]
    public void Method_lists_parse_with_all_and_reject_unknown_names()
    {
        Assert.Equal([PersonalizationMethod.TextualInversion, PersonalizationMethod.DreamBooth, PersonalizationMethod.AttnDreamBooth],
            PersonalizationMethods.ParseList("ti, DreamBooth,attndreambooth,ti"));
        Assert.Equal(PersonalizationMethods.All, PersonalizationMethods.ParseList("all"));
        var error = Assert.Throws<ArgumentException>(() => PersonalizationMethods.ParseList("ti,lora"));
        Assert.Contains("'lora'", error.Message);
        Assert.Contains("no-regularization", error.Message);
        Assert.Throws<ArgumentException>(() => PersonalizationMethods.ParseList(" , "));
        Assert.False(PersonalizationMethods.TryParse(null, out _));
    }

    [Fact]
    public void Textual_inversion_trains_only_the_embedding_without_regularization_at_the_reference_budget()
    {
        var p = StagePlan.TextualInversion;
        Assert.Equal([TrainingStage.Embedding], p.EnabledStages);
        Assert.Equal(StagePlan.ReferenceTotalSteps, p.TotalSteps);
        Assert.Equal(4e-3, p.Stage1.LearningRate, 15);
        Assert.Equal(8, p.Stage1.BatchSize);
        Assert.True(p.Stage1.RegularizationWeights.IsZero);
        Assert.False(p.UsesPriorPreservation);
        Assert.Null(p.IdentifierToken);
        Assert.Equal(EmbeddingInitialization.CategoryWord, p.EmbeddingInitialization);
    }

    [Fact]
    public void DreamBooth_fine_tunes_the_unet_on_sks_with_prior_preservation()
    {
        var p = StagePlan.DreamBooth;
        Assert.Equal([TrainingStage.UNet], p.EnabledStages);
        Assert.Equal(StagePlan.ReferenceTotalSteps, p.TotalSteps);
        Assert.Equal(5e-6, p.Stage3.LearningRate);
        Assert.Equal(8, p.Stage3.BatchSize);
        Assert.Equal(1.0, p.Stage3.PriorLossWeight);
        Assert.Equal(1.0, p.Stage3.MaxGradNorm);
        Assert.True(p.Stage3.RegularizationWeights.IsZero);
        Assert.Equal("sks", p.IdentifierToken);
        Assert.Equal(EmbeddingInitialization.IdentifierToken, p.EmbeddingInitialization);
        Assert.True(p.UsesPriorPreservation);
        var prior = p.PriorPreservation!;
        Assert.Equal(100, prior.NumClassImages);
        Assert.Equal("a photo of a dog", prior.ExpandClassPrompt(" dog "));
    }

    [Fact]
    public void TI_then_DreamBooth_splits_the_budget_like_AttnDreamBooth()
    {
        var p = StagePlan.TextualInversionDreamBooth;
        Assert.Equal([TrainingStage.Embedding, TrainingStage.UNet], p.EnabledStages);
        Assert.Equal(160, p.Stage1.Steps);
        Assert.Equal(StagePlan.Paper.Stage1.Steps + StagePlan.Paper.Stage2.Steps, p.Stage1.Steps);
        Assert.Equal(StagePlan.Paper.Stage3.Steps, p.Stage3.Steps);
        Assert.Equal(StagePlan.ReferenceTotalSteps, p.TotalSteps);
        Assert.Equal(StagePlan.TextualInversion.Stage1 with { Steps = 160 }, p.Stage1);
        Assert.Equal(StagePlan.DreamBooth.Stage3 with { Steps = 500, TrainEmbedding = true }, p.Stage3);
        Assert.Equal(0, p.Stage1.PriorLossWeight);
        Assert.Null(p.IdentifierToken);
        Assert.Equal(EmbeddingInitialization.CategoryWord, p.EmbeddingInitialization);
        Assert.NotNull(p.PriorPreservation);
    }

    [Fact]
    public void Ablations_remove_exactly_one_part_of_the_paper_plan()
    {
        var paper = StagePlan.Paper;
        Assert.Equal(paper.Skip(TrainingStage.Embedding), StagePlan.For(PersonalizationMethod.WithoutEmbeddingStage));
        Assert.Equal(600, StagePlan.For(PersonalizationMethod.WithoutEmbeddingStage).TotalSteps);
        Assert.Equal(560, StagePlan.For(PersonalizationMethod.WithoutCrossAttentionStage).TotalSteps);
        Assert.Equal(160, StagePlan.For(PersonalizationMethod.WithoutUNetStage).TotalSteps);
        var noReg = StagePlan.For(PersonalizationMethod.WithoutRegularization);
        Assert.Equal(StagePlan.ReferenceTotalSteps, noReg.TotalSteps);
        foreach (var stage in noReg.EnabledStages)
        {
            Assert.True(noReg[stage].RegularizationWeights.IsZero);
            Assert.Equal(paper[stage] with { RegularizationWeights = AttentionRegularizationWeights.None }, noReg[stage]);
        }
        Assert.All(PersonalizationMethods.Ablations, m => Assert.False(StagePlan.For(m).UsesPriorPreservation));
    }

    [Theory]
    [InlineData(660, new[] { 60, 100, 500 })]
    [InlineData(66, new[] { 6, 10, 50 })]
    [InlineData(10, new[] { 1, 1, 8 })]
    [InlineData(3, new[] { 1, 1, 1 })]
    [InlineData(1000, new[] { 91, 151, 758 })]
    public void WithTotalSteps_keeps_each_stage_share(int total, int[] expected)
    {
        var plan = StagePlan.Paper.WithTotalSteps(total);
        Assert.Equal(expected, plan.EnabledStages.Select(s => plan[s].Steps));
        Assert.Equal(total, plan.TotalSteps);
        Assert.Equal(StagePlan.Paper.Stage1 with { Steps = expected[0] }, plan.Stage1);
    }

    [Fact]
    public void WithTotalSteps_skips_disabled_stages_and_refuses_too_few_steps()
    {
        var ti = StagePlan.TextualInversionDreamBooth.WithTotalSteps(33);
        Assert.Equal(8, ti.Stage1.Steps);
        Assert.Equal(25, ti.Stage3.Steps);
        Assert.Equal(StagePlan.Paper.Stage2.Steps, ti.Stage2.Steps);
        Assert.False(ti.Stage2.Enabled);
        Assert.Throws<ArgumentOutOfRangeException>(() => StagePlan.Paper.WithTotalSteps(2));
    }

    [Fact]
    public void New_settings_stay_out_of_the_json_of_plans_that_do_not_use_them()
    {
        // A plan written before these settings existed must keep its JSON, and so its run fingerprint.
        string json = StagePlan.Paper.ToJson();
        foreach (string key in new[] { "prior_loss_weight", "identifier_token", "embedding_initialization", "prior_preservation", "train_embedding" })
            Assert.DoesNotContain(key, json, StringComparison.Ordinal);
        string db = StagePlan.DreamBooth.ToJson();
        Assert.Contains("\"embedding_initialization\": \"identifier_token\"", db, StringComparison.Ordinal);
        Assert.Contains("\"prior_loss_weight\": 1", db, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, TrainingStage?> InvalidMethodSettings() => new()
    {
        { "negative weight", "PriorLossWeight", TrainingStage.UNet },
        { "nan weight", "PriorLossWeight", TrainingStage.UNet },
        { "weight without settings", "PriorPreservation", null },
        { "weight in stage 1", "PriorLossWeight", TrainingStage.Embedding },
        { "no class images", "PriorPreservation.NumClassImages", null },
        { "too many class images", "PriorPreservation.NumClassImages", null },
        { "brace in class prompt", "PriorPreservation.ClassPrompt", null },
        { "empty class prompt", "PriorPreservation.ClassPrompt", null },
        { "sample batch", "PriorPreservation.SampleBatchSize", null },
        { "inference steps", "PriorPreservation.InferenceSteps", null },
        { "guidance", "PriorPreservation.GuidanceScale", null },
        { "sampler", "PriorPreservation.Sampler", null },
        { "token with space", "IdentifierToken", null },
        { "initialization", "EmbeddingInitialization", null },
    };

    [Theory]
    [MemberData(nameof(InvalidMethodSettings))]
    public void Invalid_method_settings_are_refused_naming_the_setting(string change, string setting, TrainingStage? stage)
    {
        var db = StagePlan.DreamBooth;
        var prior = db.PriorPreservation!;
        var plan = change switch
        {
            "negative weight" => db.With(TrainingStage.UNet, s => s with { PriorLossWeight = -1 }),
            "nan weight" => db.With(TrainingStage.UNet, s => s with { PriorLossWeight = double.NaN }),
            "weight without settings" => db with { PriorPreservation = null },
            "weight in stage 1" => StagePlan.TextualInversionDreamBooth.With(TrainingStage.Embedding, s => s with { PriorLossWeight = 1 }),
            "no class images" => db with { PriorPreservation = prior with { NumClassImages = 0 } },
            "too many class images" => db with { PriorPreservation = prior with { NumClassImages = PriorPreservationOptions.MaxClassImages + 1 } },
            "brace in class prompt" => db with { PriorPreservation = prior with { ClassPrompt = "a photo of a {token} {category}" } },
            "empty class prompt" => db with { PriorPreservation = prior with { ClassPrompt = "  " } },
            "sample batch" => db with { PriorPreservation = prior with { SampleBatchSize = 65 } },
            "inference steps" => db with { PriorPreservation = prior with { InferenceSteps = 0 } },
            "guidance" => db with { PriorPreservation = prior with { GuidanceScale = double.PositiveInfinity } },
            "sampler" => db with { PriorPreservation = prior with { Sampler = "no-such-sampler" } },
            "token with space" => db with { IdentifierToken = "s ks" },
            "initialization" => db with { EmbeddingInitialization = (EmbeddingInitialization)7 },
            _ => throw new ArgumentOutOfRangeException(nameof(change)),
        };
        var error = Assert.Throws<InvalidStagePlanException>(plan.Validate);
        Assert.Equal(setting, error.Setting);
        Assert.Equal(stage, error.Stage);
        // The builder validates too, before any model is loaded.
        Assert.Throws<InvalidStagePlanException>(() => PersonalizationPipeline.FromPretrained("unused").WithStages(plan));
    }

    [Fact]
    public void A_prior_weight_of_zero_needs_no_class_image_settings()
    {
        var plan = StagePlan.DreamBooth.With(TrainingStage.UNet, s => s with { PriorLossWeight = 0 }) with { PriorPreservation = null };
        plan.Validate();
        Assert.False(plan.UsesPriorPreservation);
        // A skipped stage's weight does not count either.
        Assert.False(StagePlan.DreamBooth.Skip(TrainingStage.UNet).With(TrainingStage.Embedding, s => s with { Enabled = true }).UsesPriorPreservation);
    }
}
