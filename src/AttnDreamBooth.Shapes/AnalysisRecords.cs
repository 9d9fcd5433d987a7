namespace AttnDreamBooth.Shapes;

/// <summary>What <see cref="ShapesAnalyzer"/> measured in an image.</summary>
/// <param name="Width">Image width.</param>
/// <param name="Height">Image height.</param>
/// <param name="Background">The background that explains the image best.</param>
/// <param name="BackgroundError">Mean capped RGB distance of all pixels to that background's colours (0 = a perfect match outside the objects).</param>
/// <param name="Objects">The objects found, largest first (at most two).</param>
public sealed record SceneAnalysis(int Width, int Height, BackgroundSpec Background, double BackgroundError, IReadOnlyList<ObjectAnalysis> Objects);

/// <summary>One object measured from pixels.</summary>
/// <param name="Mask">Its pixels (coverage 255) — the connected component that differs from the background.</param>
/// <param name="Area">Area in pixels, rim pixels counted by their estimated coverage.</param>
/// <param name="CentroidX">Mean column + 0.5 of the mask pixels.</param>
/// <param name="CentroidY">Mean row + 0.5 of the mask pixels.</param>
/// <param name="Bounds">Its bounding box.</param>
/// <param name="Shape">Best-matching shape.</param>
/// <param name="ShapeIoU">IoU of the silhouette with that shape's template (1 = identical).</param>
/// <param name="Color">Best-matching fill colour.</param>
/// <param name="ColorError">Mean RGB distance of its inner pixels to that colour's fill–ink segment.</param>
/// <param name="Pattern">Measured pattern.</param>
/// <param name="Texture">The pattern statistics the pattern was read from.</param>
/// <param name="Size">Size class from the longer side of its bounds.</param>
/// <param name="Position">Position class from the centre of its bounds.</param>
public sealed record ObjectAnalysis(
    ObjectMask Mask,
    double Area,
    double CentroidX,
    double CentroidY,
    PixelBounds Bounds,
    ShapeSpec Shape,
    double ShapeIoU,
    ColorSpec Color,
    double ColorError,
    PatternSpec Pattern,
    TextureStatistics Texture,
    SizeSpec Size,
    PositionSpec Position)
{
    /// <summary>Every shape with its fitted template's IoU, best first, as the analyzer ranked them (null when built by hand).</summary>
    internal (ShapeSpec Shape, double IoU)[]? ShapeRanking { get; init; }
}

/// <summary>
/// Statistics of the two-colour texture inside an object: each inner pixel is labelled "fill" or "ink" by which end
/// of the fill–ink segment it is nearer; the layout of the labels tells the pattern apart.
/// </summary>
/// <param name="InkFraction">Fraction of inner pixels labelled ink (≈0 solid, ≈0.28 dots, ≈0.5 stripes/checker).</param>
/// <param name="HorizontalChange">Fraction of horizontally adjacent inner pairs with different labels.</param>
/// <param name="VerticalChange">Fraction of vertically adjacent inner pairs with different labels.</param>
/// <param name="InnerPixels">Number of inner pixels measured.</param>
public sealed record TextureStatistics(double InkFraction, double HorizontalChange, double VerticalChange, int InnerPixels);
