using AttnDreamBooth.Models.Lora;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>Loading a LoRA file (kohya/A1111 or diffusers) into a loaded Stable Diffusion model for generation.</summary>
public static class StableDiffusionLoraExtensions
{
    /// <summary>
    /// Reads <paramref name="loraPath"/> onto the components' U-Net and text encoder, installs it at
    /// <paramref name="scale"/> and returns the network (change the strength with <see cref="LoraNetwork.SetScale(double)"/>,
    /// bake it in with <see cref="LoraNetwork.Merge"/>, take it out with <see cref="LoraNetwork.Remove"/> or by disposing it).
    /// </summary>
    /// <exception cref="LoraException">The file has keys that match no layer (unless
    /// <see cref="LoraLoadOptions.UnknownKeys"/> says to report them), incomplete modules or wrong shapes.</exception>
    public static LoraNetwork LoadLora(this StableDiffusionComponents components, string loraPath, double scale = 1.0, LoraLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(components);
        var network = LoraFile.Load(loraPath, components.UNet, components.TextEncoder, (options ?? new LoraLoadOptions()) with { Scale = scale });
        try
        {
            network.Install();
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return network;
    }
}
