using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// Turns recorded cross-attention probabilities into per-token heatmaps: for each layer the map of a token column is
/// averaged over heads, reshaped to the layer's h × w grid, resized (bilinear) to a common resolution, and the layers
/// are averaged — the aggregation used for attention visualisations such as the paper's figures.
/// </summary>
internal static class AttentionHeatmaps
{
    /// <summary>
    /// Aggregates <paramref name="layers"/> (probabilities [B, heads, h·w, K] with their grid size) into [B, K, R, R]
    /// heatmaps, R = <paramref name="resolution"/>, in float32 on the maps' device.
    /// </summary>
    /// <exception cref="ArgumentException">No layers; a map whose shape does not match its grid, batch or token count.</exception>
    public static Tensor Aggregate(IReadOnlyList<(Tensor Probabilities, int Height, int Width)> layers, int resolution) =>
        Aggregate(layers, resolution, null);

    /// <summary>
    /// As <see cref="Aggregate(IReadOnlyList{ValueTuple{Tensor, int, int}}, int)"/>, and also the same aggregation over
    /// each layer resolution's layers alone, keyed by the layers' grid height (largest first), each [B, K, R, R]. The
    /// all-layer maps are computed exactly as without the split (same operations in the same order).
    /// </summary>
    public static (Tensor All, IReadOnlyDictionary<int, Tensor> ByHeight) AggregateByHeight(
        IReadOnlyList<(Tensor Probabilities, int Height, int Width)> layers, int resolution)
    {
        var byHeight = new SortedDictionary<int, Tensor>(DescendingHeights);
        var all = Aggregate(layers, resolution, byHeight);
        return (all, byHeight);
    }

    /// <summary>Orders latent grid heights from the finest resolution down, the order every per-resolution map is kept in.</summary>
    internal static readonly IComparer<int> DescendingHeights = Comparer<int>.Create((a, b) => b.CompareTo(a));

    private static Tensor Aggregate(IReadOnlyList<(Tensor Probabilities, int Height, int Width)> layers, int resolution,
        IDictionary<int, Tensor>? byHeight)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentOutOfRangeException.ThrowIfLessThan(resolution, 1);
        if (layers.Count == 0) throw new ArgumentException("At least one layer is needed.", nameof(layers));
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        var groups = new Dictionary<int, (Tensor Sum, int Count)>();
        long batch = -1, tokens = -1;
        for (int i = 0; i < layers.Count; i++)
        {
            var (p, h, w) = layers[i];
            ArgumentNullException.ThrowIfNull(p);
            if (p.dim() != 4 || p.shape[2] != (long)h * w || h < 1 || w < 1)
                throw new ArgumentException($"Layer {i}: probabilities must be [batch, heads, {h}x{w}, tokens]; got [{string.Join(", ", p.shape)}].", nameof(layers));
            if (batch >= 0 && (p.shape[0] != batch || p.shape[3] != tokens))
                throw new ArgumentException($"Layer {i}: batch/token sizes [{p.shape[0]}, {p.shape[3]}] differ from layer 0's [{batch}, {tokens}].", nameof(layers));
            (batch, tokens) = (p.shape[0], p.shape[3]);
            var grid = p.detach().to_type(ScalarType.Float32).mean([1]).permute(0, 2, 1).reshape(batch, tokens, h, w);
            var resized = h == resolution && w == resolution
                ? grid
                : nn.functional.interpolate(grid, size: [resolution, resolution], mode: InterpolationMode.Bilinear, align_corners: false);
            sum = sum is null ? resized : sum.add(resized, One);
            // Out-of-place adds: a group's first sum may be the very tensor the all-layer sum started from.
            if (byHeight is not null)
                groups[h] = groups.TryGetValue(h, out var g) ? (g.Sum.add(resized, One), g.Count + 1) : (resized, 1);
        }
        if (byHeight is not null)
        {
            foreach (var (h, (groupSum, count)) in groups) byHeight[h] = groupSum.div(Kept(count)).MoveToOuterDisposeScope();
        }
        return sum!.div(Kept(layers.Count)).MoveToOuterDisposeScope();
    }
}
