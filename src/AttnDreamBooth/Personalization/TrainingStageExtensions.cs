namespace AttnDreamBooth.Personalization;

/// <summary>Display helpers for <see cref="TrainingStage"/>.</summary>
internal static class TrainingStageExtensions
{
    /// <summary>A short name: "textual-inversion", "cross-attention" or "unet".</summary>
    public static string DisplayName(this TrainingStage stage) => stage switch
    {
        TrainingStage.Embedding => "textual-inversion",
        TrainingStage.CrossAttention => "cross-attention",
        TrainingStage.UNet => "unet",
        _ => stage.ToString(),
    };
}
