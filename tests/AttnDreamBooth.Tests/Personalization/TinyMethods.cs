using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>The method presets shrunk to the tiny fixture models: a few steps per stage, batch 1, a few cheap class images.</summary>
internal static class TinyMethods
{
    public static PriorPreservationOptions Prior(int count = 2, string prompt = PriorPreservationOptions.DefaultClassPrompt, long seed = 5) => new()
    {
        ClassPrompt = prompt,
        NumClassImages = count,
        Seed = seed,
        SampleBatchSize = 2,
        InferenceSteps = 2,
    };

    /// <summary><paramref name="method"/>'s preset with <paramref name="stepsPerStage"/> steps in each enabled stage and
    /// batch 1; its class-image settings (if any) replaced by <see cref="Prior"/>.</summary>
    public static StagePlan Plan(PersonalizationMethod method, int stepsPerStage = 2)
    {
        var plan = StagePlan.For(method).WithBatchSize(1) with { CheckpointInterval = 1 };
        foreach (var stage in plan.EnabledStages) plan = plan.With(stage, s => s with { Steps = stepsPerStage });
        return plan.PriorPreservation is null ? plan : plan with { PriorPreservation = Prior() };
    }
}
