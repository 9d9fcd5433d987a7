namespace AttnDreamBooth.Shapes;

/// <summary>
/// One object of a scene: its attribute classes and its exact geometry (fractions of the image side, so a scene
/// renders at any size). <see cref="Concept"/>, when set, replaces the colour/pattern appearance with the concept's.
/// </summary>
/// <param name="Shape">Shape category.</param>
/// <param name="Color">Fill colour.</param>
/// <param name="Pattern">Fill pattern.</param>
/// <param name="Size">Size class.</param>
/// <param name="Position">Position class.</param>
/// <param name="CenterX">Centre of the object's bounds, fraction of the image width.</param>
/// <param name="CenterY">Centre of the object's bounds, fraction of the image height.</param>
/// <param name="Side">Longer side of the object's bounds, fraction of the image side.</param>
public sealed record SceneObject(ShapeSpec Shape, ColorSpec Color, PatternSpec Pattern, SizeSpec Size, PositionSpec Position, double CenterX, double CenterY, double Side)
{
    /// <summary>The personalized concept's appearance drawn instead of <see cref="Color"/>/<see cref="Pattern"/>, or null.</summary>
    public ConceptAppearance? Concept { get; init; }
}

/// <summary>What a scene shows: a background and one or two objects that do not overlap.</summary>
/// <param name="Background">The background.</param>
/// <param name="BackgroundSeed">Seed of the background's procedural details (flakes, stars, blades, waves).</param>
/// <param name="Objects">The objects, in drawing order; with two, the caption reads "first next to second".</param>
public sealed record Scene(BackgroundSpec Background, long BackgroundSeed, IReadOnlyList<SceneObject> Objects);
