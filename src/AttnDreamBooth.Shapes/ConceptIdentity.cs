namespace AttnDreamBooth.Shapes;

/// <summary>
/// How much an object looks like a concept, each part in [0, 1]; <see cref="Score"/> is the mean of the parts that
/// apply (outline and emblem only when the concept has them). About 1 on renders of the concept, low on other objects
/// of its category.
/// </summary>
/// <param name="Score">Mean of the applicable parts.</param>
/// <param name="Shape">1 when the silhouette's best template is the concept's category, else the ratio of their IoUs.</param>
/// <param name="Palette">Share of inner pixels explained by the concept's colours and their blends (blends with the outline
/// colour only while they are mostly pattern, as blur makes them).</param>
/// <param name="Balance">How close the share of the secondary colour is to what the concept's pattern puts there.</param>
/// <param name="Pattern">1 when the texture in the concept's two colours reads as the concept's pattern, 0.5 as another two-colour pattern, 0 as one colour.</param>
/// <param name="Outline">Share of the rim within the stroke's width (plus a pixel) of a pixel that is mostly the outline
/// colour, blurred or not, and nearer to it than to the background (null when the concept has no outline).</param>
/// <param name="Emblem">Share of the emblem's area that is mostly the emblem colour, blurred into the pattern or not (null
/// when the concept has no emblem).</param>
/// <param name="Texture">The texture statistics in the concept's two colours that <see cref="Pattern"/> was read from.</param>
public sealed record ConceptIdentity(double Score, double Shape, double Palette, double Balance, double Pattern, double? Outline, double? Emblem, TextureStatistics? Texture)
{
    /// <summary>No object: every part 0.</summary>
    public static ConceptIdentity None { get; } = new(0, 0, 0, 0, 0, null, null, null);
}
