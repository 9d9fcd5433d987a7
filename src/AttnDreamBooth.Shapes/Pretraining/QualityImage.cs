using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>One image of a quality measurement with the sample the report scored from it.</summary>
/// <param name="PromptIndex">The held-out prompt's index (0-based, in the order measured).</param>
/// <param name="Sample">The report's sample of this image (the same instance as in <see cref="QualityReport.Samples"/>).</param>
/// <param name="Image">The generated image (or the VAE reconstruction) the analyzer read.</param>
public sealed record QualityImage(int PromptIndex, QualitySample Sample, RgbImage Image);
