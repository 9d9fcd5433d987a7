using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>The class images a run's prior-preservation loss draws from.</summary>
/// <param name="Prompt">The class prompt, e.g. "a photo of a dog".</param>
/// <param name="Count">Number of class images.</param>
/// <param name="Sample">Returns class image i as [3, H, W] in [-1, 1] on the CPU (not augmented).</param>
internal sealed record PriorPreservationData(string Prompt, int Count, Func<int, torch.Tensor> Sample);
