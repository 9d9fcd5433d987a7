namespace AttnDreamBooth.Personalization;

/// <summary>
/// The personalization methods the library ships as presets: AttnDreamBooth, the baselines it is compared with, and
/// its ablations. <see cref="StagePlan.For(PersonalizationMethod)"/> gives each one's plan; docs/methods.md lists their
/// settings and sources.
/// </summary>
public enum PersonalizationMethod
{
    /// <summary>AttnDreamBooth with the official numbers (<see cref="StagePlan.Paper"/>).</summary>
    AttnDreamBooth,

    /// <summary>AttnDreamBooth's published fast variant (<see cref="StagePlan.Fast"/>).</summary>
    AttnDreamBoothFast,

    /// <summary>Textual Inversion: only the new token's embedding row is learned, without the attention regularization.</summary>
    TextualInversion,

    /// <summary>DreamBooth: the whole U-Net is fine-tuned on "a photo of a sks {category}" (an existing rare token
    /// keeping its own embedding) with the prior-preservation loss on generated class images.</summary>
    DreamBooth,

    /// <summary>Textual Inversion, then DreamBooth fine-tuning of the U-Net with the learned token fixed.</summary>
    TextualInversionDreamBooth,

    /// <summary>AttnDreamBooth ablation: stage 1 skipped (the [V] row keeps the category word's embedding).</summary>
    WithoutEmbeddingStage,

    /// <summary>AttnDreamBooth ablation: stage 2 (cross-attention fine-tuning) skipped.</summary>
    WithoutCrossAttentionStage,

    /// <summary>AttnDreamBooth ablation: stage 3 (whole U-Net fine-tuning) skipped.</summary>
    WithoutUNetStage,

    /// <summary>AttnDreamBooth ablation: the cross-attention map regularization turned off in every stage.</summary>
    WithoutRegularization,
}
