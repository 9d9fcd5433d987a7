using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Blocks;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Blocks;

/// <summary>The one activation table: what each library's configs may name, the formulas, and the one exception every
/// model raises for a name it cannot build.</summary>
public sealed class ActivationsTests
{
    [Fact]
    public void EachLibraryAcceptsItsOwnNames()
    {
        Assert.Equal(["silu", "swish", "gelu", "relu", "mish"], Activations.Names(ActivationNaming.Diffusers));
        Assert.Equal(["silu", "swish", "gelu", "relu", "mish", "quick_gelu", "gelu_new", "gelu_pytorch_tanh"], Activations.Names(ActivationNaming.Transformers));
        // quick_gelu is a transformers name; diffusers' get_activation refuses it.
        Assert.False(Activations.IsSupported("quick_gelu", ActivationNaming.Diffusers));
        Assert.False(Activations.IsSupported("SiLU", ActivationNaming.Diffusers));
        Assert.False(Activations.IsSupported(null, ActivationNaming.Transformers));
    }

    [Fact]
    public void FormulasMatchTheReferenceDefinitions()
    {
        using var scope = NewDisposeScope();
        var x = torch.linspace(-6, 6, 241, dtype: ScalarType.Float64);
        Tensor Apply(string name) => Activations.Get(name, ActivationNaming.Transformers, "hidden_act")(x);
        var erfGelu = x.mul(Kept(0.5)).mul(torch.special.erf(x.div(Kept(Math.Sqrt(2)))).add(Kept(1), One));
        var tanhGelu = x.mul(Kept(0.5)).mul(torch.tanh(x.add(x.pow(Kept(3)).mul(Kept(0.044715)), One).mul(Kept(Math.Sqrt(2 / Math.PI)))).add(Kept(1), One));
        Assert.True(Apply("silu").allclose(x * torch.sigmoid(x)));
        Assert.True(Apply("swish").eq(Apply("silu")).all().item<bool>());
        Assert.True(Apply("gelu").allclose(erfGelu));
        Assert.True(Apply("relu").eq(x.clamp_min(Kept(0))).all().item<bool>());
        Assert.True(Apply("mish").allclose(x * torch.tanh(torch.log1p(torch.exp(x)))));
        Assert.True(Apply("quick_gelu").allclose(x * torch.sigmoid(x.mul(Kept(1.702)))));
        Assert.True(Apply("gelu_new").allclose(tanhGelu));
        Assert.True(Apply("gelu_pytorch_tanh").eq(Apply("gelu_new")).all().item<bool>());
    }

    [Fact]
    public void MishUsesPyTorchsSoftplusThresholdAndKeepsGradientsFinite()
    {
        using var scope = NewDisposeScope();
        var x = torch.tensor(new[] { -30.0, -5, 0, 5, 19.5, 20, 20.5, 100, 1000 }, requires_grad: true);
        var y = Activations.Get("mish", ActivationNaming.Diffusers, "act_fn")(x);
        var v = x.detach();
        var softplus = torch.where(v.gt(Kept(20)), v, torch.log1p(torch.exp(v)));
        Assert.True(y.detach().allclose(v * torch.tanh(softplus)));
        y.sum().backward();
        Assert.True(torch.isfinite(x.grad!).all().item<bool>());
    }

    [Fact]
    public void UnknownNamesAreOneTypedExceptionNamingTheField()
    {
        var vaeFile = Assert.Throws<ModelConfigException>(() => AutoencoderKLConfig.FromReader(ConfigReader.Parse("{\"act_fn\": \"quick_gelu\"}", "vae/config.json")));
        Assert.Equal(("act_fn", "vae/config.json"), (vaeFile.Key, vaeFile.FilePath));
        Assert.Contains("silu, swish, gelu, relu, mish", vaeFile.Message);

        var vaeRecord = Assert.Throws<ModelConfigException>(() => new AutoencoderKL(new AutoencoderKLConfig { ActFn = "tanh" }, ComponentFactories.Meta));
        Assert.Equal("act_fn", vaeRecord.Key);

        var textRecord = Assert.Throws<ModelConfigException>(() => new ClipTextModel(new ClipTextConfig { HiddenAct = "tanh" }, ComponentFactories.Meta));
        Assert.Equal("hidden_act", textRecord.Key);

        var vision = Assert.Throws<ModelConfigException>(() => ClipVisionConfig.FromReader(ConfigReader.Parse("{\"hidden_act\": \"tanh\"}", "clip/config.json")));
        Assert.Equal(("hidden_act", "clip/config.json"), (vision.Key, vision.FilePath));
        Assert.Equal("gelu_new", ClipVisionConfig.FromReader(ConfigReader.Parse("{\"hidden_act\": \"gelu_new\"}")).HiddenAct);

        var lookup = Assert.Throws<ModelConfigException>(() => Activations.Get("tanh", ActivationNaming.Diffusers, "act_fn"));
        Assert.Equal("act_fn", lookup.Key);
    }
}
