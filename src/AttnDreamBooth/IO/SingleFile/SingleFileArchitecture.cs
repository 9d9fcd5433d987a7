namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// The structure of the three networks of a single-file checkpoint, from diffusers configs. The key map is generated
/// from it, so a checkpoint of any level count, layers per block or attention placement maps exactly; a component
/// left null is neither loaded nor expected.
/// </summary>
/// <param name="UNet">The U-Net layout.</param>
/// <param name="Vae">The VAE layout.</param>
/// <param name="TextEncoder">The text-encoder layout.</param>
internal sealed record SingleFileArchitecture(UNetSingleFileLayout? UNet, VaeSingleFileLayout? Vae, TextEncoderSingleFileLayout? TextEncoder)
{
    /// <summary>Reads the layouts from the <c>unet</c>, <c>vae</c> and <c>text_encoder</c> configs of a diffusers folder
    /// (weights are not needed: a folder of configs and tokenizer is enough).</summary>
    public static SingleFileArchitecture FromFolder(string diffusersFolder)
    {
        var folder = DiffusersFolder.Open(diffusersFolder);
        return FromConfigs(folder.ConfigPath(SingleFileComponents.UNet), folder.ConfigPath(SingleFileComponents.Vae), folder.ConfigPath(SingleFileComponents.TextEncoder));
    }

    /// <summary>Reads the layouts from individual config files (null skips a component).</summary>
    public static SingleFileArchitecture FromConfigs(string? unetConfigPath, string? vaeConfigPath, string? textEncoderConfigPath) => new(
        unetConfigPath is null ? null : UNetSingleFileLayout.Load(unetConfigPath),
        vaeConfigPath is null ? null : VaeSingleFileLayout.Load(vaeConfigPath),
        textEncoderConfigPath is null ? null : TextEncoderSingleFileLayout.Load(textEncoderConfigPath));

    /// <summary>The components this architecture describes.</summary>
    public IReadOnlyList<string> Components =>
        SingleFileComponents.All.Where(c => c switch
        {
            SingleFileComponents.UNet => UNet is not null,
            SingleFileComponents.Vae => Vae is not null,
            _ => TextEncoder is not null,
        }).ToArray();
}
