using AttnDreamBooth.Models.Attention;
using TorchSharp;
using AttentionModule = AttnDreamBooth.Models.Attention.Attention;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Attention;

public sealed class AttentionModuleTests
{
    private static AttentionModule Cross() => new(queryDim: 32, crossAttentionDim: 24, heads: 4, headDim: 8);

    [Fact]
    public void ParameterNamesFollowDiffusers()
    {
        using var attn = Cross();
        Assert.Equal(["to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias"], attn.state_dict().Keys);
        Assert.Equal(new long[] { 32, 24 }, attn.state_dict()["to_k.weight"].shape);
        Assert.True(attn.IsCrossAttention);
        Assert.False(new AttentionModule(32, null, 4, 8).IsCrossAttention);
    }

    [Fact]
    public void RecordingProcessorMatchesTheFusedKernelAndNaiveReference()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        using var attn = Cross();
        var g = new torch.Generator(11);
        var x = torch.randn([2, 6 * 5, 32], generator: g);
        var text = torch.randn([2, 77, 24], generator: g);
        var context = new AttentionContext(6, 5);
        using var noGrad = torch.no_grad();
        var fused = attn.call(x, text, context);

        using var store = new AttentionMapStore();
        attn.Processor = new RecordingAttentionProcessor(store);
        var recorded = attn.call(x, text, context);
        Assert.True(recorded.allclose(fused, rtol: 1e-5, atol: 1e-6));

        // Naive reference: softmax(Q K^T / sqrt(d)) per head.
        var q = attn.ToQ.call(x).view(2, 30, 4, 8).transpose(1, 2);
        var k = attn.ToK.call(text).view(2, 77, 4, 8).transpose(1, 2);
        var reference = torch.matmul(q, k.transpose(-1, -2)).div(Kept(Math.Sqrt(8))).softmax(-1);
        var map = Assert.Single(store.Maps);
        Assert.Equal("", map.LayerPath);
        Assert.Equal((6, 5), (map.Height, map.Width));
        Assert.True(map.Probabilities.allclose(reference, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void AnImageLayerReturnsTheStandardLayoutWithDiffusersValues()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        using var attn = AttentionModule.SpatialSelfAttention(channels: 16, groups: 16, eps: 1e-6, device: null);
        var image = torch.randn([2, 16, 6, 5], generator: new torch.Generator(12));
        using var noGrad = torch.no_grad();
        var output = attn.call(image, null, null);

        // diffusers: group norm, tokens, attention, then transpose(-1, -2).reshape(...) (a channels-last view) + residual.
        // Its GroupNorm starts as the identity map (weight 1, bias 0).
        var tokens = torch.nn.functional.group_norm(image, 16, eps: 1e-6).reshape(2, 16, 30).transpose(1, 2);
        var q = attn.ToQ.call(tokens);
        var k = attn.ToK.call(tokens);
        var v = attn.ToV.call(tokens);
        var weights = torch.matmul(q, k.transpose(-1, -2)).div(Kept(4.0)).softmax(-1);
        var attended = attn.ToOut.call(torch.matmul(weights, v));
        var reference = attended.transpose(-1, -2).reshape(2, 16, 6, 5).add(image, One);

        Assert.True(output.allclose(reference, rtol: 1e-5, atol: 1e-6));
        // The standard layout, not the channels-last view the reshape makes: the layers after it (GroupNorm, convolutions)
        // run much slower on that view with few channels per group (docs/shapes-world.md, pretraining time).
        Assert.True(output.is_contiguous());
    }

    [Fact]
    public void UpcastComputesHalfInputsInFloat32()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var attn = new AttentionModule(16, 16, 2, 8, upcastAttention: true);
        var g = new torch.Generator(5);
        var x = torch.randn([1, 10, 16], generator: g);
        var text = torch.randn([1, 77, 16], generator: g);
        using var noGrad = torch.no_grad();
        var full = attn.call(x, text, null);
        attn.to(torch.bfloat16);
        var half = attn.call(x.to_type(torch.bfloat16), text.to_type(torch.bfloat16), null);
        Assert.Equal(torch.bfloat16, half.dtype);
        Assert.True(half.to_type(torch.float32).allclose(full, rtol: 0.05, atol: 0.05));
        using var store = new AttentionMapStore();
        attn.Processor = new RecordingAttentionProcessor(store);
        var recorded = attn.call(x.to_type(torch.bfloat16), text.to_type(torch.bfloat16), null);
        Assert.Equal(torch.bfloat16, recorded.dtype);
        Assert.Equal(torch.float32, store.Maps[0].Probabilities.dtype);
    }

    [Fact]
    public void MisshapedInputsAreRejected()
    {
        using var scope = torch.NewDisposeScope();
        using var attn = Cross();
        var x = torch.zeros(1, 6, 32);
        Assert.Throws<ArgumentNullException>(() => attn.call(x, null, null));
        Assert.Throws<ArgumentException>(() => attn.call(torch.zeros(1, 6, 31), torch.zeros(1, 77, 24), null));
        Assert.Throws<ArgumentException>(() => attn.call(x, torch.zeros(1, 77, 32), null));
        Assert.Throws<ArgumentException>(() => attn.call(x, torch.zeros(1, 77, 24), new AttentionContext(2, 2)));
        Assert.Throws<ArgumentNullException>(() => attn.Processor = null!);
    }
}
