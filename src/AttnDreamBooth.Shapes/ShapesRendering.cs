using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>A rendered scene: the image, the scene it shows (ground truth) and each object's silhouette.</summary>
/// <param name="Image">The RGB image.</param>
/// <param name="Scene">The scene that was drawn.</param>
/// <param name="Masks">One silhouette per object of <see cref="Scene"/>, in the same order.</param>
public sealed record ShapesRendering(RgbImage Image, Scene Scene, IReadOnlyList<ObjectMask> Masks);
