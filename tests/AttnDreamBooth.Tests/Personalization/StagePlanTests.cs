using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class StagePlanTests
{
    [Fact]
    public void Paper_preset_has_the_official_numbers()
    {
        var p = StagePlan.Paper;
        AssertStage(p.Stage1, 60, 1e-3, 8, 0.1, 0);
        AssertStage(p.Stage2, 100, 2e-5, 8, 2, 5);
        AssertStage(p.Stage3, 500, 2e-6, 8, 2, 5);
        Assert.Equal(660, p.TotalSteps);
        Assert.Equal([TrainingStage.Embedding, TrainingStage.CrossAttention, TrainingStage.UNet], p.EnabledStages);
        p.Validate();
    }

    [Fact]
    public void Fast_preset_only_shortens_stage_three()
    {
        var f = StagePlan.Fast;
        Assert.Equal(StagePlan.Paper.Stage1, f.Stage1);
        Assert.Equal(StagePlan.Paper.Stage2, f.Stage2);
        AssertStage(f.Stage3, 200, 1e-5, 4, 2, 5);
        f.Validate();
    }

    [Fact]
    public void Stages_can_be_skipped_reweighted_and_changed()
    {
        var plan = StagePlan.Paper
            .Skip(TrainingStage.Embedding)
            .WithRegularization(TrainingStage.CrossAttention, new AttentionRegularizationWeights(1, 2))
            .With(TrainingStage.UNet, s => s with { Steps = 7, GradientAccumulationSteps = 3, MaxGradNorm = 1.0 });
        Assert.Equal([TrainingStage.CrossAttention, TrainingStage.UNet], plan.EnabledStages);
        Assert.Equal(new AttentionRegularizationWeights(1, 2), plan[TrainingStage.CrossAttention].RegularizationWeights);
        Assert.Equal(24, plan.Stage3.EffectiveBatchSize);
        Assert.Equal(107, plan.TotalSteps);
        plan.Validate();
        // The presets are untouched.
        Assert.True(StagePlan.Paper.Stage1.Enabled);
        Assert.Equal(500, StagePlan.Paper.Stage3.Steps);

        var small = StagePlan.Fast.WithSteps(2, 3, 4).WithBatchSize(1);
        Assert.Equal(9, small.TotalSteps);
        Assert.All(small.EnabledStages, s => Assert.Equal(1, small[s].BatchSize));
    }

    public static TheoryData<string, string> InvalidPlans() => new()
    {
        { "steps", "Steps" }, { "lr0", "LearningRate" }, { "lrnan", "LearningRate" }, { "batch", "BatchSize" },
        { "accum", "GradientAccumulationSteps" }, { "wmean", "RegularizationWeights.Mean" }, { "wvar", "RegularizationWeights.Variance" },
        { "beta1", "Optimizer.Beta1" }, { "beta2", "Optimizer.Beta2" }, { "wd", "Optimizer.WeightDecay" }, { "eps", "Optimizer.Epsilon" },
        { "clip", "MaxGradNorm" }, { "interval", "CheckpointInterval" }, { "none", "stages" },
    };

    [Theory]
    [MemberData(nameof(InvalidPlans))]
    public void Invalid_settings_are_named(string what, string setting)
    {
        var p = StagePlan.Paper;
        StagePlan bad = what switch
        {
            "steps" => p.With(TrainingStage.CrossAttention, s => s with { Steps = 0 }),
            "lr0" => p.With(TrainingStage.CrossAttention, s => s with { LearningRate = 0 }),
            "lrnan" => p.With(TrainingStage.CrossAttention, s => s with { LearningRate = double.NaN }),
            "batch" => p.With(TrainingStage.CrossAttention, s => s with { BatchSize = 0 }),
            "accum" => p.With(TrainingStage.CrossAttention, s => s with { GradientAccumulationSteps = 0 }),
            "wmean" => p.With(TrainingStage.CrossAttention, s => s with { RegularizationWeights = new(-1, 0) }),
            "wvar" => p.With(TrainingStage.CrossAttention, s => s with { RegularizationWeights = new(0, double.PositiveInfinity) }),
            "beta1" => p.With(TrainingStage.CrossAttention, s => s with { Optimizer = s.Optimizer with { Beta1 = 1.0 } }),
            "beta2" => p.With(TrainingStage.CrossAttention, s => s with { Optimizer = s.Optimizer with { Beta2 = -0.1 } }),
            "wd" => p.With(TrainingStage.CrossAttention, s => s with { Optimizer = s.Optimizer with { WeightDecay = -1e-2 } }),
            "eps" => p.With(TrainingStage.CrossAttention, s => s with { Optimizer = s.Optimizer with { Epsilon = 0 } }),
            "clip" => p.With(TrainingStage.CrossAttention, s => s with { MaxGradNorm = 0 }),
            "interval" => p with { CheckpointInterval = 0 },
            "none" => p.Skip(TrainingStage.Embedding).Skip(TrainingStage.CrossAttention).Skip(TrainingStage.UNet),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        var ex = Assert.Throws<InvalidStagePlanException>(bad.Validate);
        Assert.Equal(setting, ex.Setting);
        Assert.Contains(setting, ex.Message);
        if (what is not ("interval" or "none"))
        {
            Assert.Equal(TrainingStage.CrossAttention, ex.Stage);
            Assert.Contains("Stage 2", ex.Message);
        }
    }

    [Fact]
    public void Step_counts_per_stage_skip_a_stage_at_zero_and_keep_its_settings()
    {
        Assert.Equal([TrainingStage.Embedding, TrainingStage.CrossAttention, TrainingStage.UNet], StagePlan.Stages);
        var plan = StagePlan.Paper.WithStepsOrSkip([3, 0, 5]);
        Assert.Equal([TrainingStage.Embedding, TrainingStage.UNet], plan.EnabledStages);
        Assert.Equal((3, 5), (plan.Stage1.Steps, plan.Stage3.Steps));
        // The skipped stage is the preset's with Enabled = false, exactly as Skip leaves it (run fingerprints hash the plan).
        Assert.Equal(StagePlan.Paper.Skip(TrainingStage.CrossAttention).Stage2, plan.Stage2);
        Assert.Throws<ArgumentException>(() => StagePlan.Paper.WithStepsOrSkip([1, 2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => StagePlan.Paper.WithStepsOrSkip([1, -1, 2]));
    }

    [Fact]
    public void Skipped_stages_are_not_validated()
    {
        var plan = StagePlan.Paper.With(TrainingStage.UNet, s => s with { Enabled = false, Steps = 0 });
        plan.Validate();
        Assert.Equal(160, plan.TotalSteps);
    }

    [Fact]
    public void Json_round_trips_and_is_validated()
    {
        var plan = StagePlan.Fast.Skip(TrainingStage.Embedding).With(TrainingStage.UNet, s => s with { MaxGradNorm = 0.5, GradientAccumulationSteps = 2 }) with { CheckpointInterval = null };
        string json = plan.ToJson();
        Assert.Contains("\"learning_rate\": 1E-05", json);
        Assert.Equal(plan, StagePlan.FromJson(json));
        Assert.Equal(StagePlan.Paper, StagePlan.FromJson(StagePlan.Paper.ToJson()));

        var broken = json.Replace("\"batch_size\": 4", "\"batch_size\": 0", StringComparison.Ordinal);
        Assert.Equal("BatchSize", Assert.Throws<InvalidStagePlanException>(() => StagePlan.FromJson(broken)).Setting);
        Assert.Throws<InvalidStagePlanException>(() => StagePlan.FromJson("{\"stage1\": {}}"));
        Assert.Throws<InvalidStagePlanException>(() => StagePlan.FromJson("not json"));
        // Plans written with camelCase names (before the casing matched the saved metadata) still read.
        Assert.Equal(plan, StagePlan.FromJson(json.Replace("\"learning_rate\"", "\"learningRate\"", StringComparison.Ordinal)));
    }

    private static void AssertStage(StageOptions s, int steps, double lr, int batch, double wMean, double wVar)
    {
        Assert.True(s.Enabled);
        Assert.Equal(steps, s.Steps);
        Assert.Equal(lr, s.LearningRate);
        Assert.Equal(batch, s.BatchSize);
        Assert.Equal(1, s.GradientAccumulationSteps);
        Assert.Equal(new AttentionRegularizationWeights(wMean, wVar), s.RegularizationWeights);
        Assert.Equal(0.9, s.Optimizer.Beta1);
        Assert.Equal(0.999, s.Optimizer.Beta2);
        Assert.Equal(1e-2, s.Optimizer.WeightDecay);
        Assert.Equal(1e-8, s.Optimizer.Epsilon);
        Assert.Null(s.MaxGradNorm);
    }
}
