using AttnDreamBooth.Models.Clip;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Clip;

/// <summary>The from-scratch initialisation of a CLIP text model follows transformers' rules and is reproducible.</summary>
// Seeds libtorch's process-wide generator, so it must not run beside tests drawing random numbers.
[Collection(AttnDreamBooth.Tests.Shapes.Pretraining.PretrainingCollection.Name)]
public sealed class ClipTextInitializationTests
{
    private static readonly ClipTextConfig Config = new()
    {
        VocabSize = 4000, HiddenSize = 64, IntermediateSize = 256, ProjectionDim = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, MaxPositionEmbeddings = 77,
    };

    private static Dictionary<string, torch.Tensor> Initialised(long seed)
    {
        var model = new ClipTextModel(Config);
        torch.random.manual_seed(seed);
        model.InitializeWeights();
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
    }

    [Fact]
    public void EveryParameterGetsTransformersRuleAndTheSameSeedGivesTheSameWeights()
    {
        var a = Initialised(3);
        double Std(string suffix) => a.Single(p => p.Key.EndsWith(suffix, StringComparison.Ordinal)).Value.std().item<float>();
        Assert.InRange(Std("token_embedding.weight"), 0.019, 0.021);
        Assert.InRange(Std("position_embedding.weight"), 0.017, 0.023);
        // q/k/v: width^-0.5 · (2·layers)^-0.5 = 0.0625; out_proj: width^-0.5 = 0.125; fc1: (2·width)^-0.5 ≈ 0.0884.
        Assert.InRange(Std("layers.0.self_attn.q_proj.weight"), 0.058, 0.067);
        Assert.InRange(Std("layers.1.self_attn.out_proj.weight"), 0.115, 0.135);
        Assert.InRange(Std("layers.0.mlp.fc1.weight"), 0.083, 0.094);
        Assert.InRange(Std("layers.0.mlp.fc2.weight"), 0.058, 0.067);
        Assert.All(a.Where(p => p.Key.EndsWith(".bias", StringComparison.Ordinal)), p => Assert.Equal(0, p.Value.abs().max().item<float>()));
        Assert.All(a.Where(p => p.Key.Contains("layer_norm", StringComparison.Ordinal) && p.Key.EndsWith(".weight", StringComparison.Ordinal)),
            p => Assert.True(p.Value.eq(Kept(1)).all().item<bool>(), p.Key));

        var b = Initialised(3);
        var c = Initialised(4);
        Assert.All(a, p => Assert.True(p.Value.eq(b[p.Key]).all().item<bool>(), p.Key));
        Assert.False(a["text_model.embeddings.token_embedding.weight"].eq(c["text_model.embeddings.token_embedding.weight"]).all().item<bool>());
    }

    [Fact]
    public void ANonPositiveFactorIsRefused()
    {
        using var model = new ClipTextModel(Config);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.InitializeWeights(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.InitializeWeights(double.NaN));
    }
}
