namespace AttnDreamBooth.Models.Lora;

/// <summary>The model a LoRA module belongs to.</summary>
internal enum LoraComponent
{
    /// <summary>The <c>UNet2DConditionModel</c> (kohya prefix <c>lora_unet_</c>, diffusers prefix <c>unet.</c>).</summary>
    UNet,

    /// <summary>The CLIP text encoder (kohya prefix <c>lora_te_</c>, diffusers prefix <c>text_encoder.</c>).</summary>
    TextEncoder,
}

/// <summary>Prefixes of the two file formats per component.</summary>
internal static class LoraComponentNames
{
    /// <summary>The kohya/A1111 prefix: <c>lora_unet_</c> or <c>lora_te_</c>.</summary>
    public static string KohyaPrefix(LoraComponent component) => component switch
    {
        LoraComponent.UNet => "lora_unet_",
        LoraComponent.TextEncoder => "lora_te_",
        _ => throw new ArgumentOutOfRangeException(nameof(component), component, "Unknown LoRA component."),
    };

    /// <summary>The diffusers prefix: <c>unet.</c> or <c>text_encoder.</c>.</summary>
    public static string DiffusersPrefix(LoraComponent component) => component switch
    {
        LoraComponent.UNet => "unet.",
        LoraComponent.TextEncoder => "text_encoder.",
        _ => throw new ArgumentOutOfRangeException(nameof(component), component, "Unknown LoRA component."),
    };

    /// <summary>The kohya module name of a diffusers module path: the prefix plus the path with every '.' replaced by '_'
    /// (e.g. <c>lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q</c>).</summary>
    public static string KohyaName(LoraComponent component, string modulePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        return KohyaPrefix(component) + modulePath.Replace('.', '_');
    }
}
