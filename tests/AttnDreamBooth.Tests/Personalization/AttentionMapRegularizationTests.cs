using AttnDreamBooth.Personalization;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class AttentionMapRegularizationTests
{
    // Two layers, batch 2. Layer 0: 2 heads x 2 pixels; layer 1: 1 head x 3 pixels. Values chosen so the statistics
    // are easy by hand (unbiased variance, divisor n - 1):
    //   L0 row0: V [1,2,3,4]  mean 2.5 var 5/3 | C [0,0,0,4] mean 1 var 4   -> dmean^2 2.25, dvar^2 49/9
    //   L0 row1: V [2,2,2,2]  mean 2   var 0   | C [1,3,1,3] mean 2 var 4/3 -> dmean^2 0,    dvar^2 16/9
    //   L1 row0: V [0,3,6]    mean 3   var 9   | C [1,1,1]   mean 1 var 0   -> dmean^2 4,    dvar^2 81
    //   L1 row1: V [1,1,1]                     | C [1,1,1]                  -> 0, 0
    // mean term = (2.25 + 4) / 2 = 3.125; variance term = (49/9 + 16/9 + 81) / 2 = 397/9.
    private const double MeanTerm = 3.125;
    private const double VarianceTerm = 397.0 / 9.0;

    private static TokenPairAttentionMaps[] HandLayers(ScalarType dtype = ScalarType.Float32) =>
    [
        new(tensor(new float[] { 1, 2, 3, 4, 2, 2, 2, 2 }).view(2, 2, 2).to_type(dtype),
            tensor(new float[] { 0, 0, 0, 4, 1, 3, 1, 3 }).view(2, 2, 2).to_type(dtype), "L0"),
        new(tensor(new float[] { 0, 3, 6, 1, 1, 1 }).view(2, 1, 3).to_type(dtype),
            tensor(new float[] { 1, 1, 1, 1, 1, 1 }).view(2, 1, 3).to_type(dtype), "L1"),
    ];

    [Theory]
    [InlineData(2.0, 5.0)]
    [InlineData(0.1, 0.0)]
    [InlineData(0.0, 1.0)]
    public void Loss_matches_hand_computed_value(double wMean, double wVar)
    {
        var loss = new AttentionMapRegularization(wMean, wVar).Compute(HandLayers());
        Assert.Equal(0, loss.dim());
        Assert.Equal(ScalarType.Float32, loss.dtype);
        double expected = wMean * MeanTerm + wVar * VarianceTerm;
        Assert.Equal(expected, loss.item<float>(), expected * 1e-6 + 1e-7);
    }

    [Fact]
    public void Terms_match_hand_computed_values()
    {
        var terms = AttentionMapRegularization.ComputeTerms(HandLayers());
        Assert.Equal(MeanTerm, terms.MeanTerm.item<float>(), 1e-6);
        Assert.Equal(VarianceTerm, terms.VarianceTerm.item<float>(), 1e-4);
    }

    [Fact]
    public void Half_precision_maps_are_reduced_in_float32()
    {
        var loss = new AttentionMapRegularization(2, 5).Compute(HandLayers(ScalarType.Float16));
        Assert.Equal(ScalarType.Float32, loss.dtype);
        Assert.Equal(2 * MeanTerm + 5 * VarianceTerm, loss.item<float>(), 1e-3);
    }

    [Fact]
    public void Statistics_are_mean_and_unbiased_variance_over_heads_and_pixels()
    {
        var maps = tensor(new float[] { 1, 2, 3, 4, 2, 2, 2, 2 }).view(2, 2, 2);
        var (mean, variance) = AttentionMapRegularization.Statistics(maps);
        Assert.Equal(new[] { 2.5f, 2f }, mean.data<float>().ToArray());
        Assert.Equal(5.0 / 3.0, variance[0].item<float>(), 1e-6);
        Assert.Equal(0.0, variance[1].item<float>(), 1e-7);

        var (m4, v4) = AttentionMapRegularization.Statistics(maps.unsqueeze(3).expand(2, 2, 2, 3));
        Assert.Equal(new long[] { 2, 3 }, m4.shape);
        Assert.Equal(5.0 / 3.0, v4[0, 2].item<float>(), 1e-6);
    }

    [Fact]
    public void Column_overload_selects_per_row_columns()
    {
        // Put the hand-made V and C maps into different columns per row of a [B, heads, pixels, K] tensor.
        var hand = HandLayers();
        var vColumns = tensor(new long[] { 1, 3 });
        var cColumns = tensor(new long[] { 2, 0 });
        var maps = hand.Select(l =>
        {
            var m = zeros(l.Concept.shape[0], l.Concept.shape[1], l.Concept.shape[2], 4);
            for (int b = 0; b < 2; b++)
            {
                m[b, TensorIndex.Colon, TensorIndex.Colon, vColumns[b].item<long>()] = l.Concept[b];
                m[b, TensorIndex.Colon, TensorIndex.Colon, cColumns[b].item<long>()] = l.Category[b];
            }
            return m;
        }).ToArray();
        var loss = new AttentionMapRegularization(2, 5).Compute(maps, vColumns, cColumns);
        Assert.Equal(2 * MeanTerm + 5 * VarianceTerm, loss.item<float>(), 1e-4);
    }

    [Fact]
    public void Gradient_is_the_closed_form_and_only_in_the_two_columns()
    {
        var gen = new torch.Generator(1234);
        const double wMean = 2, wVar = 5;
        long[][] shapes = [[2, 3, 16, 7], [2, 2, 4, 7], [2, 4, 1, 7]];
        var maps = shapes.Select(s => torch.softmax(torch.randn(s, generator: gen), -1).requires_grad_(true)).ToArray();
        var iv = tensor(new long[] { 2, 4 });
        var ic = tensor(new long[] { 3, 5 });
        var loss = new AttentionMapRegularization(wMean, wVar).Compute(maps, iv, ic);
        loss.backward();

        int layers = maps.Length;
        foreach (var map in maps)
        {
            var a = map.detach().to_type(ScalarType.Float64);
            var g = map.grad!.to_type(ScalarType.Float64);
            long b = a.shape[0], k = a.shape[3], n = a.shape[1] * a.shape[2];
            for (long row = 0; row < b; row++)
            {
                long v = iv[row].item<long>(), c = ic[row].item<long>();
                var av = a[row, TensorIndex.Colon, TensorIndex.Colon, v];
                var ac = a[row, TensorIndex.Colon, TensorIndex.Colon, c];
                double muV = av.mean().item<double>(), muC = ac.mean().item<double>();
                double varV = av.var().item<double>(), varC = ac.var().item<double>();
                double common = 2 * wMean * (muV - muC) / n;
                double varFactor = 4 * wVar * (varV - varC) / (n - 1);
                var expectedV = av.sub(Kept(muV)).mul(Kept(varFactor)).add(Kept(common), One).div(Kept(layers));
                var expectedC = ac.sub(Kept(muC)).mul(Kept(varFactor)).add(Kept(common), One).div(Kept(-layers));
                AssertAllClose(expectedV, g[row, TensorIndex.Colon, TensorIndex.Colon, v]);
                AssertAllClose(expectedC, g[row, TensorIndex.Colon, TensorIndex.Colon, c]);
                Assert.True(expectedV.abs().max().item<double>() > 0);
                for (long other = 0; other < k; other++)
                {
                    if (other == v || other == c) continue;
                    Assert.True(g[row, TensorIndex.Colon, TensorIndex.Colon, other].eq(Kept(0)).all().item<bool>(), $"column {other} of row {row} got gradient");
                }
            }
        }
    }

    [Fact]
    public void Loss_moves_the_concept_embedding()
    {
        // A miniature cross-attention: queries from pixels, keys from token embeddings with a trainable [V] row.
        var gen = new torch.Generator(7);
        var queries = torch.randn([1, 2, 9, 4], generator: gen);               // [B, heads, pixels, d]
        var frozen = torch.randn([5, 4], generator: gen);                      // 5 tokens; row 2 is [V], row 3 the category
        var conceptRow = torch.randn([1, 4], generator: gen).requires_grad_(true);
        var keys = torch.cat([frozen[..2], conceptRow, frozen[3..]], 0);        // [tokens, d]
        var probabilities = torch.softmax(torch.matmul(queries, keys.t()).div(Kept(2.0)), -1);
        var loss = new AttentionMapRegularization(AttentionRegularizationWeights.EmbeddingStage)
            .Compute([probabilities], tensor(new long[] { 2 }), tensor(new long[] { 3 }));
        loss.backward();
        Assert.True(loss.item<float>() > 0);
        Assert.True(conceptRow.grad!.abs().max().item<float>() > 0, "the regularization must send gradient to the [V] embedding");

        using (torch.no_grad()) conceptRow.sub_(conceptRow.grad.mul(Kept(10)));
        var keysAfter = torch.cat([frozen[..2], conceptRow, frozen[3..]], 0);
        var after = new AttentionMapRegularization(AttentionRegularizationWeights.EmbeddingStage)
            .Compute([torch.softmax(torch.matmul(queries, keysAfter.t()).div(Kept(2.0)), -1)], tensor(new long[] { 2 }), tensor(new long[] { 3 }));
        Assert.True(after.item<float>() < loss.item<float>(), "a gradient step on [V] must reduce the regularization");
    }

    [Fact]
    public void Empty_layer_list_is_rejected()
    {
        var reg = new AttentionMapRegularization(2, 5);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => reg.Compute(Array.Empty<TokenPairAttentionMaps>())).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => reg.Compute(Array.Empty<Tensor>(), tensor(new long[] { 0 }), tensor(new long[] { 1 }))).Message);
    }

    [Fact]
    public void Single_value_per_token_is_rejected_when_the_variance_is_used()
    {
        var layer = new TokenPairAttentionMaps(ones(2, 1, 1), zeros(2, 1, 1), "tiny");
        var ex = Assert.Throws<ArgumentException>(() => new AttentionMapRegularization(2, 5).Compute([layer]));
        Assert.Contains("variance", ex.Message);
        Assert.Contains("tiny", ex.Message);
        Assert.Throws<ArgumentException>(() => AttentionMapRegularization.ComputeTerms([layer]));
        // Without the variance the mean term is well defined: (1 - 0)^2 summed over 2 rows, times 0.1.
        Assert.Equal(0.2, new AttentionMapRegularization(0.1, 0).Compute([layer]).item<float>(), 1e-6);
    }

    [Fact]
    public void Mismatched_shapes_are_rejected()
    {
        var reg = new AttentionMapRegularization(2, 5);
        Assert.Contains("differ in shape", Assert.Throws<ArgumentException>(() => reg.Compute([new TokenPairAttentionMaps(ones(2, 2, 4), ones(2, 2, 3))])).Message);
        Assert.Contains("batch size", Assert.Throws<ArgumentException>(() => reg.Compute([
            new TokenPairAttentionMaps(ones(2, 2, 4), ones(2, 2, 4)), new TokenPairAttentionMaps(ones(3, 2, 4), ones(3, 2, 4))])).Message);
        Assert.Contains("[batch, heads, pixels]", Assert.Throws<ArgumentException>(() => reg.Compute([new TokenPairAttentionMaps(ones(2, 8), ones(2, 8))])).Message);
        Assert.Throws<ArgumentException>(() => reg.Compute([new TokenPairAttentionMaps(ones(2, 2, 4), ones(2, 2, 4, ScalarType.Float64))]));
        Assert.Contains("shape [2]", Assert.Throws<ArgumentException>(() => reg.Compute([ones(2, 2, 4, 5)], tensor(new long[] { 0, 1, 2 }), tensor(new long[] { 1, 2 }))).Message);
        Assert.Contains("outside [0, 5)", Assert.Throws<ArgumentException>(() => reg.Compute([ones(2, 2, 4, 5)], tensor(new long[] { 0, 5 }), tensor(new long[] { 1, 2 }))).Message);
        Assert.Throws<ArgumentException>(() => reg.Compute([ones(2, 2, 4, 5)], tensor(new float[] { 0, 1 }), tensor(new long[] { 1, 2 })));
    }

    [Fact]
    public void Invalid_weights_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionMapRegularization(-1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionMapRegularization(0, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionMapRegularization(double.PositiveInfinity, 0));
    }

    private static void AssertAllClose(Tensor expected, Tensor actual)
    {
        double tol = 1e-5 * expected.abs().max().item<double>() + 1e-12;
        double err = expected.sub(actual).abs().max().item<double>();
        Assert.True(err <= tol, $"max abs error {err:g4} > {tol:g4}");
    }
}
