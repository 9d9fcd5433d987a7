using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>The class-image half of a prior-preservation step: its loss is the plain diffusion loss (no attention
/// regularization: the class prompt has no [V]), added to the instance loss with weight <paramref name="Weight"/>.</summary>
/// <param name="Latents">Scaled VAE latents of class images [B, 4, h, w].</param>
/// <param name="Noise">Gaussian noise, same shape.</param>
/// <param name="Timesteps">Training timesteps [B] (int64).</param>
/// <param name="EncoderHiddenStates">The class prompt's text conditioning [B, 77, D] (fixed; the text encoder is frozen).</param>
/// <param name="Weight">The prior-preservation weight, finite and ≥ 0; 0 skips the class forward pass.</param>
internal sealed record PriorPreservationBatch(torch.Tensor Latents, torch.Tensor Noise, torch.Tensor Timesteps, torch.Tensor EncoderHiddenStates, double Weight);
