using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers' <c>CLIPTextTransformer</c> (<c>text_model</c>): embeddings, encoder, <c>final_layer_norm</c>.</summary>
internal sealed class ClipTextTransformer : nn.Module
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;

    public ClipTextTransformer(ClipTextConfig config, Device? device) : base("text_model")
    {
        embeddings = new ClipTextEmbeddings(config, device);
        encoder = new ClipEncoder(ClipEncoderSpec.Text(config), device);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device);
        RegisterComponents();
    }

    public ClipTextEmbeddings Embeddings => embeddings;

    /// <summary>Returns the final hidden states (after <c>final_layer_norm</c>); fills <paramref name="hiddenStates"/> when given.</summary>
    public Tensor Forward(Tensor inputsEmbeds, Tensor? additiveMask, List<Tensor>? hiddenStates)
    {
        var withPositions = embeddings.call(inputsEmbeds);
        var encoded = encoder.Forward(withPositions, additiveMask, hiddenStates);
        return final_layer_norm.call(encoded);
    }
}
