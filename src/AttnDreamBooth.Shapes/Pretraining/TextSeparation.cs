namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// How far the text encoder's output moves when one attribute of a caption names another value
/// (<see cref="ShapesConditioningProbe.MeasureTextSeparation"/>). Both figures are relative to the mean norm of a token's
/// hidden state with the full caption, averaged over the images. An encoder that does not tell two values of the attribute
/// apart gives the U-Net nothing to act on: both figures stay near 0.
/// </summary>
/// <param name="Attribute">The attribute swapped (one of <see cref="AttributeUse.Attributes"/>).</param>
/// <param name="MeanMove">Mean over all token positions (the whole sequence the U-Net attends to, padding included) of
/// the hidden state's move.</param>
/// <param name="PeakMove">The largest move at any one position, usually the swapped word itself.</param>
public sealed record TextSeparation(string Attribute, double MeanMove, double PeakMove);
