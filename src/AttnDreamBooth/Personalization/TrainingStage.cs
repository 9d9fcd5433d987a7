namespace AttnDreamBooth.Personalization;

/// <summary>The three stages of AttnDreamBooth, in training order.</summary>
public enum TrainingStage
{
    /// <summary>Stage 1: only the [V] token's embedding row is learned (textual inversion with the attention regularization).</summary>
    Embedding = 1,

    /// <summary>Stage 2: every cross-attention projection of the U-Net (<c>attn2.to_q/to_k/to_v/to_out.0</c>); the embedding fixed unless
    /// <see cref="StageOptions.TrainEmbedding"/>.</summary>
    CrossAttention = 2,

    /// <summary>Stage 3: the whole U-Net; the embedding fixed unless <see cref="StageOptions.TrainEmbedding"/>.</summary>
    UNet = 3,
}
