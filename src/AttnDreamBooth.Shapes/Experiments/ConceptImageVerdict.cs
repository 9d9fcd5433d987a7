namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>What the analyzer measured in one generated image against what its prompt asked for.</summary>
/// <param name="Prompt">The prompt as given to the pipeline.</param>
/// <param name="Seed">The image's seed.</param>
/// <param name="ExpectedBackground">The background the prompt asked for.</param>
/// <param name="MeasuredBackground">The background the analyzer found.</param>
/// <param name="ExpectedPosition">The position the prompt asked for (null when it named none).</param>
/// <param name="MeasuredPosition">The position of the object most like the concept (null when no object was found).</param>
/// <param name="Identity">How much the object most like the concept looks like it.</param>
/// <param name="HeatmapIoU">IoU of the thresholded [V] cross-attention map with that object's mask (null without a map or an object).</param>
public sealed record ConceptImageVerdict(string Prompt, long Seed, string ExpectedBackground, string MeasuredBackground,
    string? ExpectedPosition, string? MeasuredPosition, ConceptIdentity Identity, double? HeatmapIoU)
{
    /// <summary>The background is the one asked for.</summary>
    public bool BackgroundFollowed => ExpectedBackground == MeasuredBackground;

    /// <summary>The object is where the prompt asked (null when the prompt named no position).</summary>
    public bool? PositionFollowed => ExpectedPosition is null ? null : ExpectedPosition == MeasuredPosition;

    /// <summary>The concept is recognisably there: identity at least <see cref="ConceptJudge.PresenceThreshold"/>.</summary>
    public bool ConceptPresent => Identity.Score >= ConceptJudge.PresenceThreshold;

    /// <summary>Every attribute the prompt asked for (<see cref="ConceptPrompt.RequestedAttributes"/>) with what the
    /// analyzer measured.</summary>
    public IReadOnlyList<PromptAttributeCheck> Attributes { get; init; } = [];

    /// <summary>IoU of each layer resolution's thresholded [V] map with that object's mask, keyed by the layers' grid
    /// height (largest first); a null value when no object was found; empty without per-resolution maps.</summary>
    public IReadOnlyDictionary<int, double?> HeatmapIoUByResolution { get; init; } = new Dictionary<int, double?>();

    /// <summary>The text score: the share of <see cref="Attributes"/> that are as asked, in [0, 1] (0 when there are none).</summary>
    public double TextScore => Attributes.Count == 0 ? 0 : Attributes.Count(a => a.Followed) / (double)Attributes.Count;
}

/// <summary>One attribute a prompt asked for and what the analyzer measured.</summary>
/// <param name="Attribute">One of <see cref="PromptAttributes.All"/>.</param>
/// <param name="Expected">The world name asked for (e.g. "beach", "left", "circle").</param>
/// <param name="Measured">The world name measured, or null when the object it belongs to was not found.</param>
public sealed record PromptAttributeCheck(string Attribute, string Expected, string? Measured)
{
    /// <summary>The measured value is the one asked for.</summary>
    public bool Followed => Expected == Measured;
}
