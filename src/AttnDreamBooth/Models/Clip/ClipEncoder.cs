using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The stack of encoder layers (transformers' <c>CLIPEncoder</c>, <c>encoder.layers.{i}</c>) of either tower.</summary>
internal sealed class ClipEncoder : nn.Module
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipEncoderSpec spec, Device? device) : base("encoder")
    {
        layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, spec.NumHiddenLayers).Select(_ => new ClipEncoderLayer(spec, device)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs every layer. When <paramref name="hiddenStates"/> is given, it receives the input and the output
    /// of every layer (transformers' <c>hidden_states</c> tuple).</summary>
    /// <param name="input">[B, T, C].</param>
    /// <param name="additiveMask">null for the tower's own mask (see <see cref="ClipAttention"/>).</param>
    /// <param name="hiddenStates">Collects the per-layer states, or null.</param>
    public Tensor Forward(Tensor input, Tensor? additiveMask, List<Tensor>? hiddenStates)
    {
        if (hiddenStates is null && layers.Count > 0)
        {
            // Nobody asked for the intermediate states: each is released once the next layer has run.
            using var scope = torch.NewDisposeScope();
            var h = input;
            foreach (var layer in layers) h = layer.call(h, additiveMask);
            return h.MoveToOuterDisposeScope();
        }
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
