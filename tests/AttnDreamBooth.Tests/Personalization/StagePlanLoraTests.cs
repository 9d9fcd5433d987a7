using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The LoRA settings of a stage plan: helpers, validation naming the setting, and JSON.</summary>
public sealed class StagePlanLoraTests
{
    [Fact]
    public void WithLoraSetsStagesTwoAndThreeAndTheirDefaultLayers()
    {
        var plan = StagePlan.Paper.WithLora(new LoraOptions(Rank: 8, Alpha: 4), learningRate: 1e-4);
        plan.Validate();
        Assert.Null(plan.Stage1.Lora);
        Assert.Equal(new LoraOptions(8, 4), plan.Stage2.Lora);
        Assert.Equal(new LoraOptions(8, 4), plan.Stage3.Lora);
        Assert.Equal(1e-3, plan.Stage1.LearningRate);
        Assert.Equal([1e-4, 1e-4], new[] { plan.Stage2.LearningRate, plan.Stage3.LearningRate });
        Assert.Equal(LoraUNetModules.CrossAttention, StagePlan.LoraModulesOf(TrainingStage.CrossAttention, plan.Stage2));
        Assert.Equal(LoraUNetModules.Transformer, StagePlan.LoraModulesOf(TrainingStage.UNet, plan.Stage3));
        Assert.True(plan.TrainsLoraOnly);
        Assert.False(StagePlan.Paper.UsesLora);

        var withConvs = plan.WithLora(TrainingStage.UNet, new LoraOptions(Rank: 8, Alpha: 4), LoraUNetModules.All);
        Assert.Equal(LoraUNetModules.All, StagePlan.LoraModulesOf(TrainingStage.UNet, withConvs.Stage3));
        Assert.False(StagePlan.Paper.WithLora(TrainingStage.CrossAttention, new LoraOptions()).TrainsLoraOnly, "stage 3 still fine-tunes the U-Net");
        Assert.True(StagePlan.Paper.Skip(TrainingStage.UNet).WithLora(TrainingStage.CrossAttention, new LoraOptions()).TrainsLoraOnly);
    }

    public static TheoryData<string, TrainingStage, string> InvalidPlans() => new()
    {
        { "stage1", TrainingStage.Embedding, "Lora" },
        { "rank", TrainingStage.CrossAttention, "Lora.Rank" },
        { "alpha", TrainingStage.UNet, "Lora.Alpha" },
        { "dropout", TrainingStage.UNet, "Lora.Dropout" },
        { "differ", TrainingStage.UNet, "Lora" },
        { "modules", TrainingStage.UNet, "LoraModules" },
    };

    [Theory]
    [MemberData(nameof(InvalidPlans))]
    public void InvalidLoraSettingsAreNamed(string what, TrainingStage stage, string setting)
    {
        var p = StagePlan.Paper;
        var bad = what switch
        {
            "stage1" => p.With(TrainingStage.Embedding, s => s with { Lora = new LoraOptions() }),
            "rank" => p.WithLora(TrainingStage.CrossAttention, new LoraOptions(Rank: 0)),
            "alpha" => p.WithLora(TrainingStage.UNet, new LoraOptions(Alpha: -1)),
            "dropout" => p.WithLora(TrainingStage.UNet, new LoraOptions(Dropout: 1)),
            "differ" => p.WithLora(TrainingStage.CrossAttention, new LoraOptions(Rank: 4)).WithLora(TrainingStage.UNet, new LoraOptions(Rank: 8)),
            "modules" => p.With(TrainingStage.UNet, s => s with { LoraModules = LoraUNetModules.FeedForward }),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        var ex = Assert.Throws<InvalidStagePlanException>(bad.Validate);
        Assert.Equal(setting, ex.Setting);
        Assert.Equal(stage, ex.Stage);
        // A skipped stage's settings are not checked.
        if (what != "differ") bad.Skip(stage).Validate();
    }

    [Fact]
    public void JsonRoundTripsLoraSettingsAndPlansWithoutLoraAreUnchanged()
    {
        var plan = StagePlan.Fast.WithLora(new LoraOptions(Rank: 16, Alpha: 8, Dropout: 0.1))
            .WithLora(TrainingStage.UNet, new LoraOptions(Rank: 16, Alpha: 8, Dropout: 0.1), LoraUNetModules.FeedForward | LoraUNetModules.ResnetConvs);
        string json = plan.ToJson();
        Assert.Contains("\"lora_modules\": \"feed_forward, resnet_convs\"", json);
        Assert.Contains("\"rank\": 16", json);
        Assert.Equal(plan, StagePlan.FromJson(json));
        // Run fingerprints and saved concepts of plans without LoRA keep their JSON.
        Assert.DoesNotContain("lora", StagePlan.Paper.ToJson(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Lora", System.Text.Json.JsonSerializer.Serialize(StagePlan.Paper), StringComparison.Ordinal);
    }
}
