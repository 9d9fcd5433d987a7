namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// The denoising error at one timestep with the full caption and with captions in which one attribute names another value
/// (<see cref="ShapesConditioningProbe.MeasureAttributeUse"/>): the rise of the error is how much the model uses that word.
/// </summary>
/// <param name="Timestep">The training timestep.</param>
/// <param name="FullCaption">Mean epsilon MSE with each image's full caption.</param>
/// <param name="Swapped">Mean epsilon MSE per attribute (<see cref="Attributes"/>) when that attribute's word is replaced.</param>
public sealed record AttributeUse(int Timestep, double FullCaption, IReadOnlyDictionary<string, double> Swapped)
{
    /// <summary>The attributes swapped, in the order of a caption.</summary>
    public static IReadOnlyList<string> Attributes { get; } = ["size", "color", "pattern", "shape", "position", "background"];

    /// <summary>How much swapping <paramref name="attribute"/> raises the error relative to the full caption (0: the word is ignored).</summary>
    public double Rise(string attribute) => FullCaption > 0 ? Swapped[attribute] / FullCaption - 1 : 0;
}
