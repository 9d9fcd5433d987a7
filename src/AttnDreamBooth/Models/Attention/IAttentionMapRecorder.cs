namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// A processor that records attention maps into an <see cref="AttentionMapStore"/>. Models look for it among their
/// processors to redirect recording while they run part of the network specially (gradient checkpointing captures
/// the maps of a checkpointed block so they stay differentiable). A recomputation during backward must record exactly
/// what the forward pass recorded, even when the caller has already changed the settings for the next batch, so a
/// recorder hands out its per-batch settings as a snapshot and takes them back.
/// </summary>
internal interface IAttentionMapRecorder
{
    /// <summary>The store the processor writes to.</summary>
    AttentionMapStore Store { get; }

    /// <summary>The per-batch settings the next forward pass will use (e.g. the token selection), as an opaque value.</summary>
    object? SnapshotState();

    /// <summary>Puts back settings taken with <see cref="SnapshotState"/> of this recorder.</summary>
    void RestoreState(object? state);
}
