using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>One training example: the rendered image, its caption and the ground truth.</summary>
/// <param name="Index">The sample index it was drawn for.</param>
/// <param name="Image">The rendered image.</param>
/// <param name="Caption">The caption ("" for an unconditional sample).</param>
/// <param name="Scene">What the image shows.</param>
/// <param name="Masks">One silhouette per object of <see cref="Scene"/>.</param>
public sealed record ShapesSample(long Index, RgbImage Image, string Caption, Scene Scene, IReadOnlyList<ObjectMask> Masks);
