using System.Text.Json.Serialization;
using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The concept identity of a concept's photos and of the VAE's reconstructions of them
/// (<see cref="ShapesModelQuality.MeasureConceptReconstruction"/>), photo by photo.</summary>
/// <param name="Concept">The concept's name.</param>
/// <param name="Photos">Identity of each photo.</param>
/// <param name="Reconstructions">Identity of each photo's reconstruction.</param>
/// <param name="PhotoImages">The photos.</param>
/// <param name="Images">The reconstructions, one per photo.</param>
public sealed record ConceptReconstruction(string Concept, IReadOnlyList<ConceptIdentity> Photos, IReadOnlyList<ConceptIdentity> Reconstructions,
    [property: JsonIgnore] IReadOnlyList<RgbImage> PhotoImages, [property: JsonIgnore] IReadOnlyList<RgbImage> Images)
{
    /// <summary>Mean identity of the photos.</summary>
    public double PhotoIdentity => Photos.Average(p => p.Score);

    /// <summary>Mean identity of the reconstructions.</summary>
    public double ReconstructionIdentity => Reconstructions.Average(r => r.Score);

    /// <summary>How many reconstructions reach <see cref="Experiments.ConceptJudge.PresenceThreshold"/>.</summary>
    public int ReconstructionsPresent => Reconstructions.Count(r => r.Score >= Experiments.ConceptJudge.PresenceThreshold);
}
