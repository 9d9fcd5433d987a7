namespace AttnDreamBooth.IO.SingleFile;

/// <summary>The diffusers component names a single-file checkpoint holds.</summary>
internal static class SingleFileComponents
{
    /// <summary>The U-Net (<c>model.diffusion_model.*</c>).</summary>
    public const string UNet = "unet";

    /// <summary>The VAE (<c>first_stage_model.*</c>).</summary>
    public const string Vae = "vae";

    /// <summary>The text encoder (<c>cond_stage_model.*</c>).</summary>
    public const string TextEncoder = "text_encoder";

    /// <summary>All three, in file order.</summary>
    public static IReadOnlyList<string> All { get; } = [UNet, Vae, TextEncoder];

    /// <summary>The original key prefix of a component.</summary>
    public static string OriginalPrefix(string component, StableDiffusionFamily family) => component switch
    {
        UNet => "model.diffusion_model.",
        Vae => "first_stage_model.",
        TextEncoder => family == StableDiffusionFamily.Sd1 ? Sd1TextPrefix : Sd2TextPrefix,
        _ => throw new ArgumentException($"Unknown component '{component}' (expected one of {string.Join(", ", All)}).", nameof(component)),
    };

    /// <summary>The SD 1.x text-encoder prefix (a transformers CLIPTextModel).</summary>
    public const string Sd1TextPrefix = "cond_stage_model.transformer.";

    /// <summary>The SD 2.x text-encoder prefix (an OpenCLIP text tower).</summary>
    public const string Sd2TextPrefix = "cond_stage_model.model.";
}
