using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Blocks;
using AttnDreamBooth.Models.UNet;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.UNet;

/// <summary>
/// Checkpointed U-Net blocks must give the gradients of the plain path for every training stage, including the
/// gradient of a loss on attention maps recorded inside checkpointed blocks. The forward output and the maps are
/// bit-identical. Gradients are summed in a different order when a block is recomputed, so they are compared with
/// tolerances: a parameter's gradient within 2e-6 * its max |grad| + 1e-6 * the largest gradient of the model;
/// text-state and input gradients within 1e-6 * max |grad| + 1e-9 (measured: ~1e-7 relative, most parameter
/// gradients bit for bit).
/// </summary>
public sealed class UNetCheckpointingTests(ITestOutputHelper output)
{
    public enum Stage { TextEmbedding, CrossAttention, FullUNet }

    public enum LossKind { MseAndMaps, MapsOnly }

    private sealed record StepResult(Tensor Prediction, Dictionary<string, Tensor> ParameterGrads, Tensor? TextGrad, Tensor? SampleGrad,
        Dictionary<string, Tensor> Maps, int StoreCountAfterBackward);

    private static bool Trains(Stage stage, string name) => stage switch
    {
        Stage.TextEmbedding => false,
        Stage.CrossAttention => name.Contains(".attn2.to_", StringComparison.Ordinal),
        _ => true,
    };

    private static StepResult Step(UNet2DConditionModel unet, Stage stage, LossKind lossKind, bool checkpointing, string pipeline)
    {
        foreach (var (name, p) in unet.named_parameters())
        {
            p.requires_grad = Trains(stage, name);
            p.grad = null;
        }
        var (sample, t, text) = TinyUNet.Inputs(unet, batch: 2, height: 12, width: 16, seed: 77);
        var target = randn(sample.shape, generator: new Generator(5));
        if (stage != Stage.CrossAttention) text.requires_grad_(true);
        if (stage == Stage.FullUNet) sample.requires_grad_(true);

        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.PerRow(new long[,] { { 2, 3 }, { 5, 6 } }));
        unet.GradientCheckpointing = checkpointing;
        var prediction = unet.call(sample, t, text);
        Assert.Equal(session.LayerPaths, store.LayerPaths);
        Assert.All(store.Maps, m => Assert.True(m.Probabilities.requires_grad, $"{m.LayerPath} is not differentiable"));

        // The regularizer's shape: per-token mean and variance gaps of the two recorded tokens.
        var mapLoss = zeros([]);
        foreach (var map in store.Maps)
        {
            var mean = map.Probabilities.mean([1L, 2L]);
            var variance = map.Probabilities.var([1L, 2L]);
            mapLoss = mapLoss.add((mean[.., 0] - mean[.., 1]).pow(Kept(2)).sum(), One).add((variance[.., 0] - variance[.., 1]).pow(Kept(2)).sum(), One);
        }
        var loss = lossKind == LossKind.MapsOnly ? mapLoss : nn.functional.mse_loss(prediction, target).add(mapLoss.mul(Kept(0.5)), One);
        loss.backward();
        Assert.False(GradientCheckpoint.IsRecomputing);

        var grads = unet.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        var maps = store.Maps.ToDictionary(m => m.LayerPath, m => m.Probabilities.detach().clone());
        int count = store.Count;
        unet.GradientCheckpointing = false;
        return new StepResult(prediction.detach(), grads, text.grad?.clone(), sample.grad?.clone(), maps, count);
    }

    private static double MaxDiff(Tensor a, Tensor b) => a.sub(b).abs().max().item<float>();

    private void AssertShared(string what, Tensor? plain, Tensor? checkpointed)
    {
        Assert.NotNull(plain);
        Assert.NotNull(checkpointed);
        double scale = plain!.abs().max().item<float>();
        double diff = MaxDiff(plain, checkpointed!);
        output.WriteLine($"{what}: max |diff| {diff:E2} (max |grad| {scale:E2})");
        Assert.True(scale > 0, $"{what}: the gradient is zero, the comparison would prove nothing");
        Assert.True(diff <= 1e-6 * scale + 1e-9, $"{what}: max |diff| {diff:E3} vs max |grad| {scale:E3}");
    }

    [Theory]
    [InlineData("sd1", Stage.TextEmbedding, LossKind.MseAndMaps)]
    [InlineData("sd1", Stage.CrossAttention, LossKind.MseAndMaps)]
    [InlineData("sd1", Stage.FullUNet, LossKind.MseAndMaps)]
    [InlineData("sd2", Stage.TextEmbedding, LossKind.MseAndMaps)]
    [InlineData("sd2", Stage.CrossAttention, LossKind.MseAndMaps)]
    [InlineData("sd2", Stage.FullUNet, LossKind.MseAndMaps)]
    [InlineData("sd2", Stage.TextEmbedding, LossKind.MapsOnly)]
    [InlineData("sd2", Stage.CrossAttention, LossKind.MapsOnly)]
    [InlineData("sd1", Stage.FullUNet, LossKind.MapsOnly)]
    public void GradientsEqualThePlainPath(string fixture, Stage stage, LossKind lossKind)
    {
        using var scope = NewDisposeScope();
        string pipeline = fixture == "sd1" ? TestPaths.TinySd1 : TestPaths.TinySd2;
        using var unet = TinyUNet.Load(pipeline);
        var plain = Step(unet, stage, lossKind, checkpointing: false, pipeline);
        var checkpointed = Step(unet, stage, lossKind, checkpointing: true, pipeline);

        Assert.True(plain.Prediction.bytes.SequenceEqual(checkpointed.Prediction.bytes), "forward output differs");
        Assert.Equal(plain.Maps.Keys, checkpointed.Maps.Keys);
        foreach (var (path, map) in plain.Maps)
            Assert.True(map.bytes.SequenceEqual(checkpointed.Maps[path].bytes), $"map {path} differs");
        Assert.Equal(plain.Maps.Count, plain.StoreCountAfterBackward);
        Assert.Equal(plain.Maps.Count, checkpointed.StoreCountAfterBackward);

        var trained = unet.named_parameters().Select(p => p.name).Where(n => Trains(stage, n)).ToArray();
        Assert.Equal(plain.ParameterGrads.Keys.Order(), checkpointed.ParameterGrads.Keys.Order());
        Assert.All(plain.ParameterGrads.Keys, n => Assert.Contains(n, trained));
        if (stage != Stage.TextEmbedding) Assert.Contains(plain.ParameterGrads.Values, g => g.abs().max().item<float>() > 0);
        // Backward sums the contributions inside a block in a different order when the block is recomputed, so most
        // gradients match bit for bit and the rest to float rounding. Gradients that are analytically zero (a
        // per-channel bias right before a GroupNorm whose groups are single channels) are pure rounding noise, hence the
        // second term, relative to the largest gradient of the model.
        double global = plain.ParameterGrads.Values.Select(g => (double)g.abs().max().item<float>()).DefaultIfEmpty(0).Max();
        int bitwise = 0;
        double worst = 0;
        foreach (var (name, grad) in plain.ParameterGrads)
        {
            var other = checkpointed.ParameterGrads[name];
            if (grad.bytes.SequenceEqual(other.bytes)) bitwise++;
            double scale = grad.abs().max().item<float>();
            double diff = MaxDiff(grad, other);
            double allowed = 2e-6 * scale + 1e-6 * global;
            worst = Math.Max(worst, diff / allowed);
            Assert.True(diff <= allowed, $"{name}: max |diff| {diff:E3}, max |grad| {scale:E3}, largest gradient {global:E3}");
        }
        output.WriteLine($"parameters: {bitwise}/{plain.ParameterGrads.Count} bitwise equal; worst diff = {worst:F3} x the allowance");

        if (stage != Stage.CrossAttention) AssertShared("text states", plain.TextGrad, checkpointed.TextGrad);
        else Assert.Null(checkpointed.TextGrad);
        if (stage == Stage.FullUNet) AssertShared("sample", plain.SampleGrad, checkpointed.SampleGrad);
    }

    [Fact]
    public void WithoutGradientsTheFlagChangesNothing()
    {
        using var scope = NewDisposeScope();
        using var unet = TinyUNet.Load(TestPaths.TinySd1);
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.Positions(1, 2));
        using var noGrad = no_grad();
        var plain = unet.call(sample, t, text);
        var plainMaps = store.Maps.Select(m => m.Probabilities.clone()).ToArray();
        unet.GradientCheckpointing = true;
        var checkpointed = unet.call(sample, t, text);
        Assert.True(plain.bytes.SequenceEqual(checkpointed.bytes));
        Assert.Equal(session.LayerPaths, store.LayerPaths);
        for (int i = 0; i < plainMaps.Length; i++) Assert.True(plainMaps[i].bytes.SequenceEqual(store.Maps[i].Probabilities.bytes));
        Assert.All(store.Maps, m => Assert.False(m.Probabilities.requires_grad));
    }

    [Fact]
    public void RecordingSettingsChangedBeforeBackwardDoNotChangeTheRecomputation()
    {
        using var scope = NewDisposeScope();
        using var unet = TinyUNet.Load(TestPaths.TinySd2);
        foreach (var (name, p) in unet.named_parameters()) p.requires_grad = Trains(Stage.CrossAttention, name);
        var (sample, t, text) = TinyUNet.Inputs(unet);
        using var store = new AttentionMapStore();
        using var session = unet.Attach(store, AttentionTokenSelection.Positions(1, 2));
        unet.GradientCheckpointing = true;
        unet.call(sample, t, text);
        var loss = store.Maps.Select(m => m.Probabilities.pow(Kept(2)).sum()).Aggregate((a, b) => a.add(b, One));

        // The next step's settings, set before this step's backward: the recomputation must still record two tokens.
        session.Tokens = AttentionTokenSelection.Positions(4);
        store.IsRecording = false;
        loss.backward();
        Assert.Equal(session.LayerPaths.Count, store.Count);
        Assert.False(store.IsRecording);
        Assert.Equal(1, session.Tokens.Count);
        var toQ = unet.named_parameters().First(p => p.name.EndsWith("attn2.to_q.weight", StringComparison.Ordinal)).parameter.grad;
        Assert.NotNull(toQ);
        Assert.True(toQ!.abs().max().item<float>() > 0);
    }

    /// <summary>A recorder with per-batch state of its own (a factor on what it records), not the library's.</summary>
    private sealed class ScalingRecorder(AttentionMapStore store) : IAttentionProcessor, IAttentionMapRecorder
    {
        public double Factor { get; set; } = 1;

        public AttentionMapStore Store => store;

        public object? SnapshotState() => Factor;

        public void RestoreState(object? state) => Factor = (double)state!;

        public void OnForwardStarting() => Store.Clear();

        public Tensor Process(AttnDreamBooth.Models.Attention.Attention attn, Tensor hiddenStates, Tensor? encoderHiddenStates, AttentionContext context)
        {
            var (q, k, v) = attn.ProjectHeads(hiddenStates, encoderHiddenStates);
            var (output, probabilities) = AttentionMath.Explicit(q, k, v, attn.Scale);
            if (Store.IsRecording) Store.Add(new RecordedAttentionMap(attn.Path, context.Height, context.Width, probabilities.mul(Kept(Factor))));
            return attn.ProjectOut(output);
        }
    }

    [Fact]
    public void AnyRecorderIsRecomputedWithTheStateOfItsForwardPass()
    {
        Tensor ToQGradient(bool checkpointing)
        {
            using var unet = TinyUNet.Load(TestPaths.TinySd2);
            foreach (var (name, p) in unet.named_parameters()) p.requires_grad = Trains(Stage.CrossAttention, name);
            var (sample, t, text) = TinyUNet.Inputs(unet);
            using var store = new AttentionMapStore();
            var recorder = new ScalingRecorder(store) { Factor = 3 };
            Assert.True(unet.SetAttentionProcessor(info => info.IsCrossAttention ? recorder : null) > 0);
            unet.GradientCheckpointing = checkpointing;
            unet.call(sample, t, text);
            var loss = store.Maps.Select(m => m.Probabilities.pow(Kept(2)).sum()).Aggregate((a, b) => a.add(b, One));
            // The next batch's setting, made before this batch's backward: a recomputation at factor 0 would record
            // zeros and pass no gradient to the weights.
            recorder.Factor = 0;
            loss.backward();
            return unet.named_parameters().First(p => p.name.EndsWith("attn2.to_q.weight", StringComparison.Ordinal)).parameter.grad!.clone();
        }

        using var scope = NewDisposeScope();
        var plain = ToQGradient(checkpointing: false);
        var checkpointed = ToQGradient(checkpointing: true);
        double largest = plain.abs().max().item<float>();
        Assert.True(largest > 0);
        Assert.True(MaxDiff(plain, checkpointed) <= 2e-6 * largest + 1e-9, $"checkpointed gradient differs by {MaxDiff(plain, checkpointed)} (max |grad| {largest})");
    }

    [Fact]
    public void CapturesRedirectAndNest()
    {
        using var scope = NewDisposeScope();
        using var store = new AttentionMapStore();
        RecordedAttentionMap Map(string path) => new(path, 1, 1, zeros(1, 1, 1, 1));
        store.Add(Map("a"));
        var outer = store.BeginCapture();
        store.Add(Map("b"));
        var inner = store.BeginCapture();
        store.Add(Map("c"));
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        store.Add(Map("d"));
        outer.Dispose();
        Assert.False(store.IsCapturing);
        Assert.Equal(["a"], store.LayerPaths);
        Assert.Equal(["b", "d"], outer.Maps.Select(m => m.LayerPath));
        Assert.Equal(["c"], inner.Maps.Select(m => m.LayerPath));
    }
}
