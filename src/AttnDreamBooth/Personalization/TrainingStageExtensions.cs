namespace AttnDreamBooth.Personalization;

/// <summary>Display helpers for <see cref="TrainingStage"/>.</summary>
internal static class TrainingStageExtensions
{
    /// <summary>The stage's name as the API spells it ("Embedding", "CrossAttention", "UNet"), so logs, the CLI and the
    /// docs use one name per stage.</summary>
    public static string DisplayName(this TrainingStage stage) => stage.ToString();
}
