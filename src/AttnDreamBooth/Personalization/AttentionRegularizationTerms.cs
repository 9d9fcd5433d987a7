using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The two unweighted parts of the regularization (0-dim tensors): the loss with weights (1, 0) and with weights
/// (0, 1), i.e. (1/L) Σ_l Σ_b (μ_V − μ_C)² and (1/L) Σ_l Σ_b (σ²_V − σ²_C)². Useful for logging which part dominates.
/// </summary>
/// <param name="MeanTerm">(1/L) Σ_l Σ_b (μ_V − μ_C)².</param>
/// <param name="VarianceTerm">(1/L) Σ_l Σ_b (σ²_V − σ²_C)².</param>
internal sealed record AttentionRegularizationTerms(torch.Tensor MeanTerm, torch.Tensor VarianceTerm);
