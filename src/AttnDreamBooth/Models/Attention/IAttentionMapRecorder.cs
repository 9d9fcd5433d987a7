namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// A processor that records attention maps into an <see cref="AttentionMapStore"/>. Models look for it among their
/// processors to redirect recording while they run part of the network specially (gradient checkpointing captures
/// the maps of a checkpointed block so they stay differentiable).
/// </summary>
public interface IAttentionMapRecorder
{
    /// <summary>The store the processor writes to.</summary>
    AttentionMapStore Store { get; }
}
