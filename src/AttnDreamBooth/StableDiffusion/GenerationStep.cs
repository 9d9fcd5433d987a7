using TorchSharp;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// What <see cref="GenerationOptions.OnStep"/> receives after every denoising step (diffusers' <c>callback_on_step_end</c>):
/// the latents for a preview, and where the sampler is. <see cref="Latents"/> is a copy that is disposed when the callback
/// returns: decode or clone it inside the callback; changing it does not affect the generation.
/// </summary>
/// <param name="Step">Steps completed, 1 to <paramref name="TotalSteps"/>.</param>
/// <param name="TotalSteps">Model evaluations of the sampler.</param>
/// <param name="Timestep">The timestep the model was just evaluated at (fractional for the k-diffusion samplers).</param>
/// <param name="Latents">The latents after this step, [batch, channels, height / 8, width / 8], scaled as the U-Net sees
/// them (divide by the VAE's scaling factor before decoding).</param>
public sealed record GenerationStep(int Step, int TotalSteps, double Timestep, torch.Tensor Latents);
