using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>Every score of one generated image of a <see cref="PersonalizationExperiment"/> (one row of results.csv).</summary>
/// <param name="Concept">The concept's name.</param>
/// <param name="Category">The concept's category word.</param>
/// <param name="IsTuning">Whether the concept is the tuning concept (kept out of the main tables).</param>
/// <param name="Method">The method trained.</param>
/// <param name="AfterStage">The stage after which the image was generated, for the per-stage images of a multi-stage
/// method; null for the trained model (after its last stage).</param>
/// <param name="PromptIndex">The prompt's index in the experiment's prompt list (0-based).</param>
/// <param name="Prompt">The prompt with <see cref="ConceptPrompts.Placeholder"/> for the concept.</param>
/// <param name="Complexity">The number of attributes the prompt asks for (<see cref="ConceptPrompt.Complexity"/>).</param>
/// <param name="Seed">The image's seed.</param>
/// <param name="Identity">The analyzer's identity of the object most like the concept (every part; <c>Score</c> is the
/// identity score).</param>
/// <param name="ReferenceIdentity">The identity the analyzer gives a render of exactly what the prompt asks for
/// (<see cref="ConceptPrompts.Render"/>): what a perfect model would score here (below 1 where the concept is drawn
/// small).</param>
/// <param name="Text">The share of the prompt's requested attributes that are present, in [0, 1].</param>
/// <param name="HeatmapIoU">IoU of the thresholded [V] map (all layers, <see cref="ConceptJudge.HeatmapThreshold"/>)
/// with the concept object's mask; null when no concept object was found.</param>
/// <param name="WordShares">The share of the prompt words' cross-attention that [V] takes, by layer grid height
/// (<see cref="StableDiffusion.AttentionHeatmap.WordShares"/>).</param>
/// <param name="Attributes">Each requested attribute with what was measured.</param>
/// <param name="Image">The image file, relative to the output folder.</param>
/// <param name="Heatmap">The [V]-map overlay file, relative to the output folder.</param>
public sealed record ExperimentImageScore(
    string Concept,
    string Category,
    bool IsTuning,
    PersonalizationMethod Method,
    TrainingStage? AfterStage,
    int PromptIndex,
    string Prompt,
    int Complexity,
    long Seed,
    ConceptIdentity Identity,
    double ReferenceIdentity,
    double Text,
    double? HeatmapIoU,
    IReadOnlyDictionary<int, double> WordShares,
    IReadOnlyList<PromptAttributeCheck> Attributes,
    string Image,
    string Heatmap)
{
    /// <summary>
    /// IoU of each layer resolution's thresholded [V] map (<see cref="StableDiffusion.AttentionHeatmap.ByLayerResolution"/>,
    /// same threshold) with the concept object's mask, keyed by the layers' grid height like <see cref="WordShares"/>; a
    /// null value when no concept object was found. Empty for rows stored before it was measured (cells of an older run),
    /// which the reports show as missing.
    /// </summary>
    public IReadOnlyDictionary<int, double?> HeatmapIoUByResolution { get; init; } = new Dictionary<int, double?>();

    /// <summary>The concept is recognisably there (identity at least <see cref="ConceptJudge.PresenceThreshold"/>).</summary>
    public bool ConceptPresent => Identity.Score >= ConceptJudge.PresenceThreshold;
}
