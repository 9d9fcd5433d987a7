using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The stack of encoder layers (<c>encoder.layers.{i}</c>).</summary>
internal sealed class ClipEncoder : nn.Module
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipTextConfig config, Device? device) : base("encoder")
    {
        layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config, device)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs every layer. When <paramref name="hiddenStates"/> is given, it receives the input and the output
    /// of every layer (transformers' <c>hidden_states</c> tuple).</summary>
    public Tensor Forward(Tensor input, Tensor? additiveMask, List<Tensor>? hiddenStates)
    {
        hiddenStates?.Add(input);
        var x = input;
        foreach (var layer in layers)
        {
            x = layer.call(x, additiveMask);
            hiddenStates?.Add(x);
        }
        return x;
    }
}
