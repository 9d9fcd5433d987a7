using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// A personalized concept's look, which no pretraining object has: its own two pattern colours, an outline and an
/// optional emblem in the middle.
/// </summary>
/// <param name="Primary">Fill colour.</param>
/// <param name="Secondary">Pattern colour (in place of the fill's darker ink).</param>
/// <param name="Pattern">Pattern layout.</param>
/// <param name="Outline">Outline colour.</param>
/// <param name="OutlineWidth">Outline width as a fraction of the object's side (0 for none).</param>
/// <param name="Emblem">Shape drawn in the middle, or null.</param>
/// <param name="EmblemColor">Colour of the emblem.</param>
/// <param name="EmblemSize">Longer side of the emblem as a fraction of the object's side.</param>
public sealed record ConceptAppearance(
    RgbColor Primary,
    RgbColor Secondary,
    PatternSpec Pattern,
    RgbColor Outline,
    double OutlineWidth,
    ShapeSpec? Emblem,
    RgbColor EmblemColor,
    double EmblemSize);
