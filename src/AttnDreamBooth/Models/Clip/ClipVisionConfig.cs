using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Blocks;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// transformers <c>CLIPVisionConfig</c>. Missing keys take the transformers defaults (ViT-B/32), which matters because
/// <c>CLIPModel.save_pretrained</c> writes the nested <c>vision_config</c> as a diff from those defaults.
/// </summary>
internal sealed record ClipVisionConfig
{
    /// <summary>Width of the transformer.</summary>
    public int HiddenSize { get; init; } = 768;

    /// <summary>Width of the MLP.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary>Encoder layers.</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Attention heads.</summary>
    public int NumAttentionHeads { get; init; } = 12;

    /// <summary>Input channels.</summary>
    public int NumChannels { get; init; } = 3;

    /// <summary>Input resolution.</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Patch size (kernel and stride of the patch embedding).</summary>
    public int PatchSize { get; init; } = 32;

    /// <summary>MLP activation: <c>quick_gelu</c> (OpenAI CLIP), <c>gelu</c> or another transformers name (as the text tower).</summary>
    public string HiddenAct { get; init; } = "quick_gelu";

    /// <summary>LayerNorm epsilon.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Patches per side.</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>Tokens: one class token plus the patches.</summary>
    public int NumPositions => GridSize * GridSize + 1;

    /// <summary>Reads a vision config: a <c>CLIPVisionModel</c> config.json, or the <c>vision_config</c> of a <c>CLIPModel</c> one.</summary>
    public static ClipVisionConfig Load(string path)
    {
        var reader = ConfigReader.Load(path);
        return FromReader(reader.Section("vision_config") ?? reader);
    }

    /// <summary>Reads a parsed (flat) vision config.</summary>
    /// <exception cref="ModelConfigException">Inconsistent sizes or an unsupported activation.</exception>
    public static ClipVisionConfig FromReader(ConfigReader config)
    {
        var d = new ClipVisionConfig();
        var c = new ClipVisionConfig
        {
            HiddenSize = config.GetInt("hidden_size", d.HiddenSize),
            IntermediateSize = config.GetInt("intermediate_size", d.IntermediateSize),
            NumHiddenLayers = config.GetInt("num_hidden_layers", d.NumHiddenLayers),
            NumAttentionHeads = config.GetInt("num_attention_heads", d.NumAttentionHeads),
            NumChannels = config.GetInt("num_channels", d.NumChannels),
            ImageSize = config.GetInt("image_size", d.ImageSize),
            PatchSize = config.GetInt("patch_size", d.PatchSize),
            HiddenAct = config.GetString("hidden_act", d.HiddenAct),
            LayerNormEps = config.GetDouble("layer_norm_eps", d.LayerNormEps),
        };
        config.Require(c.HiddenSize > 0 && c.NumAttentionHeads > 0 && c.HiddenSize % c.NumAttentionHeads == 0, "num_attention_heads",
            $"hidden_size {c.HiddenSize} must be a positive multiple of num_attention_heads {c.NumAttentionHeads}");
        config.Require(c.PatchSize > 0 && c.ImageSize % c.PatchSize == 0, "patch_size", $"image_size {c.ImageSize} must be a multiple of patch_size {c.PatchSize}");
        config.Require(c.NumHiddenLayers >= 1 && c.IntermediateSize >= 1 && c.NumChannels >= 1, "num_hidden_layers", "sizes must be positive");
        Activations.Require(c.HiddenAct, ActivationNaming.Transformers, config.FilePath, "hidden_act");
        ClipVisionLimits.Check(c, config.FilePath);
        return c;
    }
}
