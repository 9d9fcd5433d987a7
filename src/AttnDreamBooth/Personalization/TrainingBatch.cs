using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>The inputs of one training micro-batch.</summary>
/// <param name="Latents">Scaled VAE latents x0 [B, 4, h, w] (already multiplied by the VAE scaling factor).</param>
/// <param name="Noise">Gaussian noise, same shape.</param>
/// <param name="Timesteps">Training timesteps [B] (int64).</param>
/// <param name="InputIds">Prompt token ids [B, 77] (int64).</param>
/// <param name="ConceptPositions">Position of [V] per row [B] (int64).</param>
/// <param name="CategoryPositions">Position of the category token per row [B] (int64).</param>
internal sealed record TrainingBatch(torch.Tensor Latents, torch.Tensor Noise, torch.Tensor Timesteps, torch.Tensor InputIds,
    torch.Tensor ConceptPositions, torch.Tensor CategoryPositions);

/// <summary>The loss of one micro-batch: the graph-carrying total and its detached parts.</summary>
/// <param name="Loss">MSE + attention regularization + prior weight × <see cref="PriorMse"/> (0-dim, with autograd graph
/// when training).</param>
/// <param name="AttentionTerm">The weighted regularization alone (0-dim, with graph), e.g. to inspect its gradient.</param>
/// <param name="Mse">The denoising loss value.</param>
/// <param name="Attention">The weighted attention-regularization value.</param>
/// <param name="ModelPrediction">The U-Net output (detached), for inspection.</param>
/// <param name="EncoderHiddenStates">The text conditioning used (detached).</param>
internal sealed record TrainingLoss(torch.Tensor Loss, torch.Tensor AttentionTerm, double Mse, double Attention, torch.Tensor ModelPrediction, torch.Tensor EncoderHiddenStates)
{
    /// <summary>The diffusion loss on the class batch, before weighting (0 without prior preservation).</summary>
    public double PriorMse { get; init; }
}
