namespace AttnDreamBooth.IO.SingleFile;

/// <summary>What the text encoder's original key layout depends on. Read from the transformers
/// <c>text_encoder/config.json</c> (CLIPTextConfig defaults for missing keys).</summary>
/// <param name="Layers">Encoder layers the diffusers model has (<c>num_hidden_layers</c>); SD 2.x files hold one more,
/// unused OpenCLIP layer, which is skipped.</param>
/// <param name="HiddenSize">The width (<c>hidden_size</c>), used to check OpenCLIP's fused q/k/v.</param>
internal sealed record TextEncoderSingleFileLayout(int Layers, int HiddenSize)
{
    /// <summary>Reads the layout from a text-encoder <c>config.json</c>.</summary>
    public static TextEncoderSingleFileLayout Load(string configPath) => FromReader(ConfigReader.Load(configPath));

    /// <summary>Reads the layout from a parsed CLIP text config.</summary>
    public static TextEncoderSingleFileLayout FromReader(ConfigReader config)
    {
        int layers = config.GetInt("num_hidden_layers", 12);
        int hidden = config.GetInt("hidden_size", 512);
        config.Require(layers >= 1, "num_hidden_layers", "must be at least 1");
        config.Require(hidden >= 1, "hidden_size", "must be at least 1");
        return new TextEncoderSingleFileLayout(layers, hidden);
    }
}
