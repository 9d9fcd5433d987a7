using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// AttnDreamBooth's cross-attention map regularization. For every layer l and batch row b it takes the mean μ and
/// the unbiased variance σ² of the [V] token's attention map and of the category token's map, pooled over the
/// layer's heads and pixels, and returns
/// <code>
/// L = (1/L) Σ_l Σ_b [ w_mean (μ_V − μ_C)² + w_var (σ²_V − σ²_C)² ]
/// </code>
/// Summed (not averaged) over the batch and averaged over the layers, nothing detached: both tokens' maps receive
/// gradient. This is the official implementation's formula; its numbers are reproduced within float32 rounding.
/// </summary>
/// <remarks>
/// Statistics are computed in float32 even when the maps are float16/bfloat16 (float64 maps stay float64), and the
/// loss is accumulated from a zero, layer by layer and row by row, as the official training loop does.
/// </remarks>
internal sealed class AttentionMapRegularization
{
    /// <summary>Creates the regularization with the given weights.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A weight is negative, NaN or infinite.</exception>
    public AttentionMapRegularization(AttentionRegularizationWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        weights.Validate(nameof(weights));
        Weights = weights;
    }

    /// <summary>Creates the regularization with weights (<paramref name="meanWeight"/>, <paramref name="varianceWeight"/>).</summary>
    public AttentionMapRegularization(double meanWeight, double varianceWeight)
        : this(new AttentionRegularizationWeights(meanWeight, varianceWeight))
    {
    }

    /// <summary>The weights (w_mean, w_var).</summary>
    public AttentionRegularizationWeights Weights { get; }

    /// <summary>
    /// The loss (0-dim, float32 or float64, on the maps' device) over <paramref name="layers"/>, each holding the
    /// [V] and category maps [B, heads, pixels] of one cross-attention layer.
    /// </summary>
    /// <exception cref="ArgumentException">The list is empty; a layer's two maps differ in shape, dtype or device;
    /// a map is not 3-D floating point; the batch size differs between layers; or a layer has a single value per
    /// token (heads × pixels = 1) while the variance weight is not zero (the unbiased variance is undefined).</exception>
    public Tensor Compute(IReadOnlyList<TokenPairAttentionMaps> layers)
    {
        ValidateLayers(layers, needVariance: Weights.Variance != 0.0);
        return Accumulate(layers, Weights.Mean, Weights.Variance);
    }

    /// <summary>
    /// The loss over full recorded maps: <paramref name="maps"/>[l] is [B, heads, pixels, K] (K recorded token
    /// columns) and the columns of [V] and of the category token are given per batch row ([B] int64 indices into
    /// the last axis; they may differ between rows).
    /// </summary>
    /// <exception cref="ArgumentException">Shapes, dtypes or indices are invalid (see <see cref="SelectTokens"/>),
    /// or the list is empty.</exception>
    public Tensor Compute(IReadOnlyList<Tensor> maps, Tensor conceptColumns, Tensor categoryColumns)
    {
        using var scope = NewDisposeScope();
        var layers = SelectAll(maps, conceptColumns, categoryColumns);
        return Compute(layers).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The unweighted mean and variance terms (the loss with weights (1, 0) and (0, 1)), accumulated the same way as
    /// <see cref="Compute(IReadOnlyList{TokenPairAttentionMaps})"/>. Requires heads × pixels ≥ 2 in every layer.
    /// </summary>
    public static AttentionRegularizationTerms ComputeTerms(IReadOnlyList<TokenPairAttentionMaps> layers)
    {
        ValidateLayers(layers, needVariance: true);
        return new AttentionRegularizationTerms(Accumulate(layers, 1.0, 0.0), Accumulate(layers, 0.0, 1.0));
    }

    /// <summary>
    /// Picks the [V] and category columns out of one layer's maps [B, heads, pixels, K]: row b of the result uses
    /// column <paramref name="conceptColumns"/>[b] (resp. <paramref name="categoryColumns"/>[b]). Differentiable
    /// (a gather): gradients flow back into those two columns only.
    /// </summary>
    /// <exception cref="ArgumentException">The map is not 4-D floating point, an index tensor is not integer of shape
    /// [B], or an index is outside [0, K).</exception>
    public static TokenPairAttentionMaps SelectTokens(Tensor maps, Tensor conceptColumns, Tensor categoryColumns, string? layer = null)
    {
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(conceptColumns);
        ArgumentNullException.ThrowIfNull(categoryColumns);
        string where = layer is null ? "" : $" (layer {layer})";
        if (maps.dim() != 4)
            throw new ArgumentException($"Attention maps{where} must be [batch, heads, pixels, tokens]; got shape {Shape(maps)}.", nameof(maps));
        if (!maps.is_floating_point())
            throw new ArgumentException($"Attention maps{where} must be floating point; got {maps.dtype}.", nameof(maps));
        long batch = maps.shape[0], tokens = maps.shape[3];
        var concept = Gather(maps, CheckColumns(conceptColumns, batch, tokens, nameof(conceptColumns), where));
        var category = Gather(maps, CheckColumns(categoryColumns, batch, tokens, nameof(categoryColumns), where));
        return new TokenPairAttentionMaps(concept, category, layer);
    }

    /// <summary>
    /// Mean and unbiased variance over heads and pixels (dimensions 1 and 2): for maps [B, heads, pixels] the
    /// results are [B]; for [B, heads, pixels, K] they are [B, K] (one value per token column). Computed in float32
    /// at least.
    /// </summary>
    public static (Tensor Mean, Tensor Variance) Statistics(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.dim() is not (3 or 4))
            throw new ArgumentException($"Attention maps must be [batch, heads, pixels] or [batch, heads, pixels, tokens]; got shape {Shape(maps)}.", nameof(maps));
        if (!maps.is_floating_point())
            throw new ArgumentException($"Attention maps must be floating point; got {maps.dtype}.", nameof(maps));
        var x = Promote(maps);
        long[] dims = [1, 2];
        return (x.mean(dims), x.var(dims, unbiased: true));
    }

    private static Tensor Accumulate(IReadOnlyList<TokenPairAttentionMaps> layers, double meanWeight, double varianceWeight)
    {
        using var scope = NewDisposeScope();
        var first = Promote(layers[0].Concept);
        var loss = zeros(Array.Empty<long>(), first.dtype, first.device);
        long[] dims = [1, 2];
        foreach (var layer in layers)
        {
            var v = Promote(layer.Concept);
            var c = Promote(layer.Category);
            var rowTerms = v.mean(dims).sub(c.mean(dims)).pow(Kept(2)).mul(Kept(meanWeight));
            // A zero weight adds exactly 0 to every row, so skipping it changes no bit and saves two reductions.
            if (varianceWeight != 0.0)
                rowTerms = rowTerms.add(v.var(dims, unbiased: true).sub(c.var(dims, unbiased: true)).pow(Kept(2)).mul(Kept(varianceWeight)), One);
            for (long b = 0; b < rowTerms.shape[0]; b++) loss = loss.add(rowTerms[b], One);
        }
        return loss.div(Kept(layers.Count)).MoveToOuterDisposeScope();
    }

    private static Tensor Promote(Tensor t) =>
        t.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? t.to_type(ScalarType.Float32) : t;

    private static IReadOnlyList<TokenPairAttentionMaps> SelectAll(IReadOnlyList<Tensor> maps, Tensor conceptColumns, Tensor categoryColumns)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.Count == 0) throw new ArgumentException("The attention regularization needs at least one layer; the list of maps is empty.", nameof(maps));
        var layers = new TokenPairAttentionMaps[maps.Count];
        for (int i = 0; i < maps.Count; i++)
        {
            if (maps[i] is null) throw new ArgumentException($"Attention map {i} is null.", nameof(maps));
            layers[i] = SelectTokens(maps[i], conceptColumns, categoryColumns, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return layers;
    }

    private static void ValidateLayers(IReadOnlyList<TokenPairAttentionMaps> layers, bool needVariance)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0) throw new ArgumentException("The attention regularization needs at least one layer; the list of layers is empty.", nameof(layers));
        long batch = -1;
        Tensor? firstMap = null;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i] ?? throw new ArgumentException($"Layer {i} is null.", nameof(layers));
            string name = layer.Layer is null ? $"layer {i}" : $"layer {i} ({layer.Layer})";
            if (layer.Concept is null || layer.Category is null) throw new ArgumentException($"{name}: a map is null.", nameof(layers));
            var v = layer.Concept;
            var c = layer.Category;
            if (v.dim() != 3)
                throw new ArgumentException($"{name}: the [V] maps must be [batch, heads, pixels]; got shape {Shape(v)}.", nameof(layers));
            if (!v.shape.SequenceEqual(c.shape))
                throw new ArgumentException($"{name}: the [V] maps {Shape(v)} and the category maps {Shape(c)} differ in shape.", nameof(layers));
            if (!v.is_floating_point() || v.dtype != c.dtype)
                throw new ArgumentException($"{name}: the maps must share one floating-point dtype; got {v.dtype} and {c.dtype}.", nameof(layers));
            if (!SameDevice(v, c) || (firstMap is not null && !SameDevice(v, firstMap)))
                throw new ArgumentException($"{name}: the maps are on different devices ({v.device}, {c.device}{(firstMap is null ? "" : $", layer 0 on {firstMap.device}")}).", nameof(layers));
            firstMap ??= v;
            if (batch >= 0 && v.shape[0] != batch)
                throw new ArgumentException($"{name}: batch size {v.shape[0]} differs from layer 0's {batch}.", nameof(layers));
            batch = v.shape[0];
            long n = v.shape[1] * v.shape[2];
            if (n == 0)
                throw new ArgumentException($"{name}: the maps are empty (heads × pixels = 0).", nameof(layers));
            if (needVariance && n == 1)
                throw new ArgumentException(
                    $"{name}: heads × pixels = 1, so the unbiased variance (divisor n − 1) is undefined. Use a variance weight of 0 or leave this layer out.",
                    nameof(layers));
        }
    }

    private static Tensor CheckColumns(Tensor columns, long batch, long tokens, string argument, string where)
    {
        if (columns.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte))
            throw new ArgumentException($"Token columns{where} must be an integer tensor; got {columns.dtype}.", argument);
        if (columns.dim() != 1 || columns.shape[0] != batch)
            throw new ArgumentException($"Token columns{where} must have shape [{batch}] (one index per batch row); got {Shape(columns)}.", argument);
        var cpu = columns.to_type(ScalarType.Int64).cpu();
        for (long b = 0; b < batch; b++)
        {
            long index = cpu[b].item<long>();
            if (index < 0 || index >= tokens)
                throw new ArgumentException($"Token column {index} of batch row {b}{where} is outside [0, {tokens}).", argument);
        }
        return columns.to_type(ScalarType.Int64);
    }

    private static Tensor Gather(Tensor maps, Tensor columns)
    {
        long b = maps.shape[0], h = maps.shape[1], p = maps.shape[2];
        var index = columns.to(maps.device).view(b, 1, 1, 1).expand(b, h, p, 1);
        return maps.gather(3, index).squeeze(3);
    }

    private static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    private static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
}
