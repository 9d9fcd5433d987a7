using AttnDreamBooth.Models.Attention;
using TorchSharp;
using static AttnDreamBooth.Tests.Parity.UNetParityHelpers;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/unet-attention-probs": the cross-attention probabilities recorded through the public recording API
/// (all token columns) equal the reference "unet.&lt;layer&gt;.attention_probs" [B*heads, H*W, tokens], and the U-Net
/// output with the recorder installed still equals the reference output.
/// </summary>
public sealed class UNetAttentionProbsCheck : IParityCheck
{
    public string Name => "unet-attention-probs";
    public IReadOnlyCollection<string> Components => ["unet"];
    public bool AppliesTo(FixtureCase fixture) => IsUNetCase(fixture) && ProbabilityTensors(fixture).Count > 0;

    public IEnumerable<string> Claims(FixtureCase fixture) => ProbabilityTensors(fixture).Keys.Concat([Sample, Timestep, EncoderHiddenStates, OutSample]);

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        using var unet = Load(context.Case);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.All);
        var sample = context.Tensor(Sample);
        using (torch.no_grad())
        {
            context.AssertClose(OutSample, unet.call(sample, context.Tensor(Timestep), context.Tensor(EncoderHiddenStates)));
        }
        Assert.Equal(session.LayerPaths.Count, store.Count);
        foreach (var (name, layerPath) in ProbabilityTensors(context.Case))
        {
            var map = store[layerPath];
            var info = unet.GetAttentionLayer(layerPath).Info;
            Assert.Equal(sample.shape[2] / info.DownscaleFactor, map.Height);
            Assert.Equal(sample.shape[3] / info.DownscaleFactor, map.Width);
            var p = map.Probabilities;
            context.AssertClose(name, p.reshape(p.shape[0] * p.shape[1], p.shape[2], p.shape[3]));
        }
    }
}
