using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>
/// Frozen layers in bfloat16 / float16 next to float32 trainable parameters. Tolerances (measured values are printed):
/// a half-precision model's output is compared with the float32 model's as max |diff| / max |fp32 output|, at most
/// 3e-2 for bfloat16 (8 mantissa bits) and 5e-3 for float16 (11 bits); gradients of the float32 parameters through a
/// half-precision network agree with the float32 network's to a cosine similarity of at least 0.99.
/// </summary>
public sealed class FrozenPrecisionTests(ITestOutputHelper output)
{
    private static bool IsCrossAttentionProjection(string name) => name.Contains(".attn2.to_", StringComparison.Ordinal);

    private double RelativeError(string what, Tensor reference, Tensor actual)
    {
        Assert.Equal(ScalarType.Float32, actual.dtype);
        double error = reference.sub(actual).abs().max().item<float>() / reference.abs().max().item<float>();
        output.WriteLine($"{what}: max |diff| / max |fp32| = {error:E2}");
        return error;
    }

    private static double Cosine(Tensor a, Tensor b) =>
        a.flatten().dot(b.flatten()).item<float>() / (a.norm().item<float>() * b.norm().item<float>());

    [Theory]
    [InlineData("sd1", ScalarType.BFloat16, 3e-2)]
    [InlineData("sd2", ScalarType.BFloat16, 3e-2)]
    [InlineData("sd2", ScalarType.Float16, 5e-3)]
    public void FrozenUNetOutputStaysCloseToFloat32(string fixture, ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        string pipeline = fixture == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2;
        using var unet = TinyUNet.Load(pipeline);
        foreach (var p in unet.parameters()) p.requires_grad = false;
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var noGrad = no_grad();
        var reference = unet.call(sample, t, text);

        var result = FrozenPrecision.Apply(unet, dtype);
        Assert.Empty(result.Kept);
        Assert.Equal(unet.parameters().Count(), result.Cast.Count);
        Assert.All(unet.parameters(), p => Assert.Equal(dtype, p.dtype));
        Assert.Equal(dtype, FrozenPrecision.ComputeDType(unet));
        Assert.True(RelativeError($"{fixture} U-Net {dtype}", reference, unet.call(sample, t, text)) <= tolerance);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StageTwoTrainsFloat32ProjectionsThroughABFloat16UNet(bool checkpointing)
    {
        using var scope = NewDisposeScope();
        var reference = TrainStep(half: false, checkpointing);
        var half = TrainStep(half: true, checkpointing);
        Assert.Equal(reference.Keys.Order(), half.Keys.Order());
        double worst = 1;
        foreach (var (name, grad) in half)
        {
            Assert.Equal(ScalarType.Float32, grad.dtype);
            worst = Math.Min(worst, Cosine(reference[name], grad));
        }
        output.WriteLine($"{half.Count} fp32 gradients through the bf16 U-Net: worst cosine similarity to fp32 {worst:F5}");
        Assert.True(worst >= 0.99, $"worst cosine {worst}");
    }

    /// <summary>One stage-2 step (MSE + a loss on the recorded maps); returns the gradients of the trained parameters
    /// after checking that every trainable parameter, gradient and AdamW moment is float32 and frozen ones hold no gradient.</summary>
    private static Dictionary<string, Tensor> TrainStep(bool half, bool checkpointing)
    {
        using var unet = TinyUNet.Load(TestPaths.TinySd2);
        foreach (var (name, p) in unet.named_parameters()) p.requires_grad = IsCrossAttentionProjection(name);
        if (half)
        {
            var result = FrozenPrecision.Apply(unet, ScalarType.BFloat16);
            Assert.All(result.Kept, n => Assert.True(IsCrossAttentionProjection(n), n));
            Assert.NotEmpty(result.Kept);
        }
        unet.GradientCheckpointing = checkpointing;
        var trainable = unet.named_parameters().Where(p => p.parameter.requires_grad).ToArray();
        Assert.All(trainable, p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
        using var optimizer = optim.AdamW(trainable.Select(p => p.parameter), lr: 1e-4, weight_decay: 1e-2);

        var (sample, t, text) = TinyUNet.Inputs(unet, batch: 2, height: 8, width: 8, seed: 99);
        var target = randn(sample.shape, generator: new Generator(3));
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.Positions(2, 3));
        var prediction = unet.call(sample, t, text);
        Assert.Equal(ScalarType.Float32, prediction.dtype);
        Assert.All(store.Maps, m => Assert.Equal(ScalarType.Float32, m.Probabilities.dtype));
        var mapLoss = store.Maps.Select(m => m.Probabilities.mean([1L, 2L])).Select(m => (m[.., 0] - m[.., 1]).pow(Kept(2)).sum()).Aggregate((a, b) => a.add(b, One));
        var loss = nn.functional.mse_loss(prediction, target).add(mapLoss, One);
        Assert.Equal(ScalarType.Float32, loss.dtype);
        loss.backward();

        foreach (var (name, p) in unet.named_parameters())
        {
            if (!p.requires_grad) Assert.Null(p.grad);
            else Assert.Equal(ScalarType.Float32, p.grad!.dtype);
        }
        var grads = trainable.ToDictionary(p => p.name, p => p.parameter.grad!.clone().MoveToOuterDisposeScope());
        optimizer.step();
        Assert.All(trainable, p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
        var moments = OptimizerTensors(optimizer).ToArray();
        Assert.Equal(2 * trainable.Length, moments.Length);
        Assert.All(moments, m => Assert.Equal(ScalarType.Float32, m.dtype));
        store.Clear();
        return grads;
    }

    /// <summary>The tensors of the optimizer's per-parameter state (AdamW: exp_avg, exp_avg_sq), found by reflection.</summary>
    private static IEnumerable<Tensor> OptimizerTensors(OptimizerHelper optimizer)
    {
        foreach (var state in optimizer.state_dict().State)
        {
            foreach (var field in state.GetType().GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance))
            {
                if (field.Name.Contains("exp_avg", StringComparison.Ordinal) && !field.Name.Contains("max", StringComparison.Ordinal)
                    && field.GetValue(state) is Tensor tensor) yield return tensor;
            }
        }
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 3e-2)]
    [InlineData(ScalarType.Float16, 5e-3)]
    public void FrozenVaeStaysCloseToFloat32(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        using var vae = VaeTestModels.LoadSd2();
        vae.eval();
        foreach (var p in vae.parameters()) p.requires_grad = false;
        var images = rand([1, 3, 32, 32], generator: new Generator(8)).mul(Kept(2)).sub(Kept(1));
        using var noGrad = no_grad();
        var mean = vae.Encode(images).Mean;
        var decoded = vae.Decode(mean);

        FrozenPrecision.Apply(vae, dtype);
        Assert.All(vae.parameters(), p => Assert.Equal(dtype, p.dtype));
        var halfMean = vae.Encode(images).Mean;
        Assert.True(RelativeError($"VAE encode {dtype}", mean, halfMean) <= tolerance);
        Assert.True(RelativeError($"VAE decode {dtype}", decoded, vae.Decode(mean)) <= tolerance);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 3e-2)]
    [InlineData(ScalarType.Float16, 5e-3)]
    public void FrozenClipTransformerStaysCloseToFloat32(ScalarType dtype, double tolerance)
    {
        // The CLIP vision tower (same layer types as the CLIP text encoder: embeddings, pre-LayerNorm attention and MLP
        // blocks). A model that does not cast its own inputs gets them cast to FrozenPrecision.ComputeDType.
        using var scope = NewDisposeScope();
        using var clip = ClipTextTower.LoadModel(Path.Combine(TestPaths.FixturesRoot, "tiny-clip-eval", "model"));
        var tower = clip.VisionModel;
        foreach (var p in tower.parameters()) p.requires_grad = false;
        int size = tower.Config.ImageSize;
        var pixels = randn([2, 3, size, size], generator: new Generator(4));
        using var noGrad = no_grad();
        var reference = tower.call(pixels);

        FrozenPrecision.Apply(tower, dtype);
        var halfOut = tower.call(pixels.to_type(FrozenPrecision.ComputeDType(tower))).to_type(ScalarType.Float32);
        Assert.True(RelativeError($"CLIP transformer {dtype}", reference, halfOut) <= tolerance);
    }

    [Theory]
    [InlineData("sd1", ScalarType.BFloat16, 3e-2)]
    [InlineData("sd2", ScalarType.BFloat16, 3e-2)]
    [InlineData("sd2", ScalarType.Float16, 5e-3)]
    public void FrozenTextEncoderStaysCloseToFloat32(string fixture, ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        string pipeline = fixture == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2;
        using var encoder = AttnDreamBooth.Models.Clip.ClipTextModel.FromFolder(Path.Combine(pipeline, "text_encoder"));
        var tokenizer = AttnDreamBooth.Text.ClipTokenizer.FromFolder(Path.Combine(pipeline, "tokenizer"));
        foreach (var p in encoder.parameters()) p.requires_grad = false;
        var ids = tokenizer.EncodeToTensor(["a photo of a dog", "a red cube on a table"]);
        using var noGrad = no_grad();
        var reference = encoder.Forward(ids).LastHiddenState;

        FrozenPrecision.Apply(encoder, dtype);
        Assert.All(encoder.parameters(), p => Assert.Equal(dtype, p.dtype));
        var half = encoder.Forward(ids).LastHiddenState.to_type(ScalarType.Float32);
        Assert.True(RelativeError($"{fixture} text encoder {dtype}", reference, half) <= tolerance);
    }

    [Fact]
    public void KeptParametersOutsideAttentionProjectionsAreRejected()
    {
        using var scope = NewDisposeScope();
        using var unet = TinyUNet.Load(TestPaths.TinySd1);
        foreach (var (name, p) in unet.named_parameters()) p.requires_grad = name.StartsWith("conv_in.", StringComparison.Ordinal);
        var error = Assert.Throws<NotSupportedException>(() => FrozenPrecision.Apply(unet, ScalarType.BFloat16));
        Assert.Contains("conv_in.weight", error.Message);
        Assert.All(unet.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.Throws<ArgumentException>(() => FrozenPrecision.Apply(unet, ScalarType.Float32));

        // Kept on request (not trainable) inside attention: accepted.
        foreach (var p in unet.parameters()) p.requires_grad = false;
        var result = FrozenPrecision.Apply(unet, ScalarType.BFloat16, keepFp32: n => n.Contains(".attn1.to_out.0.", StringComparison.Ordinal));
        Assert.NotEmpty(result.Kept);
        Assert.All(result.Kept, n => Assert.Contains(".attn1.to_out.0.", n));
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var noGrad = no_grad();
        Assert.Equal(ScalarType.Float32, unet.call(sample, t, text).dtype);
    }

    [Fact]
    public void CastingReleasesTheReplacedFloat32Tensors()
    {
        using var unet = TinyUNet.Load(TestPaths.TinySd2);
        foreach (var (name, p) in unet.named_parameters()) p.requires_grad = name.Contains(".attn2.to_", StringComparison.Ordinal);
        var frozen = unet.named_parameters().Where(p => !p.parameter.requires_grad).Select(p => p.parameter).ToArray();
        var trained = unet.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.parameter).ToArray();
        FrozenPrecision.Apply(unet, ScalarType.BFloat16);
        // The float32 originals of the cast layers are freed at once, not left to the garbage collector.
        Assert.All(frozen, p => Assert.True(p.IsInvalid));
        Assert.All(trained, p => Assert.False(p.IsInvalid));
        Assert.All(unet.parameters(), p => Assert.False(p.IsInvalid));

        var half = unet.parameters().Where(p => p.dtype == ScalarType.BFloat16).ToArray();
        FrozenPrecision.ConvertReleasing(unet, ScalarType.Float32);
        Assert.All(half, p => Assert.True(p.IsInvalid));
        Assert.All(unet.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(trained, p => Assert.False(p.IsInvalid));
    }

    [Fact]
    public void IntegerBuffersKeepTheirType()
    {
        using var scope = NewDisposeScope();
        using var module = new BufferedEmbedding();
        foreach (var p in module.parameters()) p.requires_grad = false;
        FrozenPrecision.Apply(module, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, module.parameters().Single().dtype);
        Assert.Equal(ScalarType.Int64, module.buffers().Single().dtype);
    }

    /// <summary>A leaf layer with a float parameter and an integer buffer.</summary>
    private sealed class BufferedEmbedding : nn.Module<Tensor, Tensor>
    {
        public BufferedEmbedding() : base(nameof(BufferedEmbedding))
        {
            register_parameter("weight", new Parameter(randn(10, 4)));
            register_buffer("position_ids", arange(Kept(0L), Kept(10L), Kept(1L)));
        }

        public override Tensor forward(Tensor input) => get_parameter("weight")!.index_select(0, input);
    }
}
