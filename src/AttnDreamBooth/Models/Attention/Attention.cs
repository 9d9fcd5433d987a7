using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// A multi-head attention layer with diffusers' parameter names (<c>to_q</c>, <c>to_k</c>, <c>to_v</c>,
/// <c>to_out.0</c>). The layer only owns the weights and the head layout; the computation is delegated to
/// <see cref="Processor"/>, which can be swapped at any time (default: <see cref="ScaledDotProductAttentionProcessor"/>).
/// An image-shaped input <c>[B, C, H, W]</c> attends over its H·W pixels as tokens; the VAE's mid-block layer also
/// normalises it first (<c>group_norm</c>) and adds it back to the output, as diffusers' layer does for the VAE.
/// </summary>
public sealed class Attention : Module<Tensor, Tensor?, AttentionContext?, Tensor>
{
    // Declared first so that, where present, it is created and listed first, as in the VAE checkpoints.
    private readonly GroupNorm? group_norm;
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<Module<Tensor, Tensor>> to_out;
    private IAttentionProcessor _processor = ScaledDotProductAttentionProcessor.Instance;

    /// <summary>Creates the layer.</summary>
    /// <param name="queryDim">Width of the query tokens.</param>
    /// <param name="crossAttentionDim">Width of the encoder states for a cross-attention layer; null for self-attention.</param>
    /// <param name="heads">Number of heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="dropout">Dropout after the output projection (<c>to_out.1</c>).</param>
    /// <param name="bias">Whether <c>to_q</c>/<c>to_k</c>/<c>to_v</c> have biases (false in Stable Diffusion).</param>
    /// <param name="upcastAttention">Compute attention in float32 when the inputs are half precision.</param>
    /// <param name="device">Device on which the parameters are created.</param>
    public Attention(int queryDim, int? crossAttentionDim, int heads, int headDim, double dropout = 0.0, bool bias = false,
        bool upcastAttention = false, Device? device = null)
        : this(queryDim, crossAttentionDim, heads, headDim, dropout, bias, upcastAttention, spatialNorm: null, device)
    {
    }

    private Attention(int queryDim, int? crossAttentionDim, int heads, int headDim, double dropout, bool bias, bool upcastAttention,
        (int Groups, double Eps)? spatialNorm, Device? device) : base(nameof(Attention))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(queryDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        if (crossAttentionDim is <= 0) throw new ArgumentOutOfRangeException(nameof(crossAttentionDim), crossAttentionDim, "must be positive or null");
        QueryDim = queryDim;
        KeyDim = crossAttentionDim ?? queryDim;
        IsCrossAttention = crossAttentionDim is not null;
        Heads = heads;
        HeadDim = headDim;
        UpcastAttention = upcastAttention;
        Scale = 1.0 / Math.Sqrt(headDim);
        int inner = heads * headDim;
        if (spatialNorm is { } norm) group_norm = GroupNormalization.Create(norm.Groups, queryDim, norm.Eps, device);
        to_q = Linear(queryDim, inner, hasBias: bias, device: device);
        to_k = Linear(KeyDim, inner, hasBias: bias, device: device);
        to_v = Linear(KeyDim, inner, hasBias: bias, device: device);
        to_out = new ModuleList<Module<Tensor, Tensor>>(Linear(inner, queryDim, hasBias: true, device: device), Dropout(dropout));
        RegisterComponents();
    }

    /// <summary>
    /// diffusers' <c>Attention</c> as the VAE's mid block builds it: one head over all <paramref name="channels"/> (scale
    /// <c>C^-0.5</c>), biased projections, a GroupNorm on the input (<c>group_norm</c>) and the input added to the output.
    /// Call it with <c>[B, C, H, W]</c>.
    /// </summary>
    internal static Attention SpatialSelfAttention(int channels, int groups, double eps, Device? device) =>
        new(channels, crossAttentionDim: null, heads: 1, headDim: channels, dropout: 0.0, bias: true, upcastAttention: false, (groups, eps), device);

    /// <summary>Module path inside the owning model (e.g. <c>mid_block.attentions.0.transformer_blocks.0.attn1</c>);
    /// empty for a stand-alone layer.</summary>
    public string Path { get; internal set; } = "";

    /// <summary>Spatial size of the layer relative to the model input (see <see cref="AttentionLayerInfo.DownscaleFactor"/>).</summary>
    public int DownscaleFactor { get; internal set; } = 1;

    /// <summary>True when the layer attends to encoder states (it was built with a cross-attention dimension).</summary>
    public bool IsCrossAttention { get; }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }

    /// <summary>Channels per head.</summary>
    public int HeadDim { get; }

    /// <summary>Width of the query tokens and of the output.</summary>
    public int QueryDim { get; }

    /// <summary>Width of the key/value inputs.</summary>
    public int KeyDim { get; }

    /// <summary>Compute attention in float32 when the inputs are half precision (SD 2.x's <c>upcast_attention</c>).</summary>
    public bool UpcastAttention { get; }

    /// <summary>The softmax scale, <c>HeadDim^-0.5</c>.</summary>
    public double Scale { get; }

    /// <summary>The query projection (<c>to_q</c>).</summary>
    public Linear ToQ => to_q;

    /// <summary>The key projection (<c>to_k</c>).</summary>
    public Linear ToK => to_k;

    /// <summary>The value projection (<c>to_v</c>).</summary>
    public Linear ToV => to_v;

    /// <summary>The output projection (<c>to_out.0</c>).</summary>
    public Linear ToOut => (Linear)to_out[0];

    /// <summary>The processor that computes this layer's output.</summary>
    public IAttentionProcessor Processor
    {
        get => _processor;
        set => _processor = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>A description of this layer for processor selectors.</summary>
    internal AttentionLayerInfo Info => new(Path, IsCrossAttention, Heads, HeadDim, QueryDim, KeyDim, DownscaleFactor);

    /// <summary>Runs the layer through <see cref="Processor"/>.</summary>
    /// <param name="hiddenStates">Query tokens <c>[B, N, QueryDim]</c>, or an image <c>[B, QueryDim, H, W]</c> whose pixels
    /// are the tokens (the output then has the image's shape).</param>
    /// <param name="encoderHiddenStates">Key/value tokens <c>[B, M, KeyDim]</c>; required for cross-attention,
    /// null for self-attention.</param>
    /// <param name="context">Spatial layout of the N query tokens; null means a plain sequence.</param>
    public override Tensor forward(Tensor hiddenStates, Tensor? encoderHiddenStates, AttentionContext? context)
    {
        ArgumentNullException.ThrowIfNull(hiddenStates);
        if (hiddenStates.dim() == 4) return ForwardImage(hiddenStates, encoderHiddenStates);
        if (hiddenStates.dim() != 3 || hiddenStates.shape[2] != QueryDim)
            throw new ArgumentException($"Attention '{Path}': hidden states must be [B, N, {QueryDim}], got [{string.Join(", ", hiddenStates.shape)}].", nameof(hiddenStates));
        if (IsCrossAttention && encoderHiddenStates is null)
            throw new ArgumentNullException(nameof(encoderHiddenStates), $"Attention '{Path}' is a cross-attention layer and needs encoder hidden states.");
        if (encoderHiddenStates is not null
            && (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[2] != KeyDim || encoderHiddenStates.shape[0] != hiddenStates.shape[0]))
            throw new ArgumentException($"Attention '{Path}': encoder hidden states must be [{hiddenStates.shape[0]}, M, {KeyDim}], got [{string.Join(", ", encoderHiddenStates.shape)}].", nameof(encoderHiddenStates));
        context ??= AttentionContext.ForSequence(hiddenStates.shape[1]);
        if (context.Tokens != hiddenStates.shape[1])
            throw new ArgumentException($"Attention '{Path}': context says {context.Height}x{context.Width} tokens, hidden states hold {hiddenStates.shape[1]}.", nameof(context));
        var output = _processor.Process(this, hiddenStates, encoderHiddenStates, context);
        // With frozen layers held in half precision and these projections trained in float32, the layer returns to the
        // dtype of the stream it is part of.
        return output.dtype == hiddenStates.dtype ? output : output.to_type(hiddenStates.dtype);
    }

    /// <summary>An image <c>[B, C, H, W]</c> as H·W tokens (normalised first when the layer has a <c>group_norm</c>, which is
    /// the same over the image as over its tokens), back to the image's shape, plus the input when the layer has a
    /// <c>group_norm</c> (diffusers' <c>residual_connection</c> of the VAE layer).</summary>
    private Tensor ForwardImage(Tensor image, Tensor? encoderHiddenStates)
    {
        if (image.shape[1] != QueryDim)
            throw new ArgumentException($"Attention '{Path}': an image input must be [B, {QueryDim}, H, W], got [{string.Join(", ", image.shape)}].", nameof(image));
        using var scope = NewDisposeScope();
        long b = image.shape[0], c = image.shape[1], h = image.shape[2], w = image.shape[3];
        var normalized = group_norm is null ? image : group_norm.call(image);
        var tokens = normalized.reshape(b, c, h * w).transpose(1, 2);
        var attended = forward(tokens, encoderHiddenStates, new AttentionContext(checked((int)h), checked((int)w)));
        // Back in the standard layout: the transposed tokens reshape into a channels-last view (as in diffusers), and the
        // layers after it would then run in that layout, where libtorch's GroupNorm backward with few channels per group
        // was most of a Shapes VAE training step.
        var output = attended.transpose(1, 2).reshape(b, c, h, w).contiguous();
        if (group_norm is not null) output = output.add(image, One);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Projects queries, keys and values and splits them into heads: each <c>[B, Heads, tokens, HeadDim]</c>.
    /// Each projection sees its input in its own weight dtype; if the three results differ in dtype (some projections
    /// held in half precision, others in float32), all three are returned in float32.</summary>
    public (Tensor Query, Tensor Key, Tensor Value) ProjectHeads(Tensor hiddenStates, Tensor? encoderHiddenStates)
    {
        var source = encoderHiddenStates ?? hiddenStates;
        var q = Project(to_q, hiddenStates);
        var k = Project(to_k, source);
        var v = Project(to_v, source);
        if (q.dtype != k.dtype || q.dtype != v.dtype)
        {
            q = q.to_type(ScalarType.Float32);
            k = k.to_type(ScalarType.Float32);
            v = v.to_type(ScalarType.Float32);
        }
        return (SplitHeads(q), SplitHeads(k), SplitHeads(v));
    }

    private static Tensor Project(Linear linear, Tensor input)
    {
        var dtype = linear.weight!.dtype;
        return linear.call(input.dtype == dtype ? input : input.to_type(dtype));
    }

    /// <summary><c>[B, N, Heads * HeadDim]</c> → <c>[B, Heads, N, HeadDim]</c> (a view).</summary>
    public Tensor SplitHeads(Tensor x) => x.view(x.shape[0], x.shape[1], Heads, HeadDim).transpose(1, 2);

    /// <summary><c>[B, Heads, N, HeadDim]</c> → <c>[B, N, Heads * HeadDim]</c>.</summary>
    public Tensor MergeHeads(Tensor x) => x.transpose(1, 2).reshape(x.shape[0], x.shape[2], (long)Heads * HeadDim);

    /// <summary>Merges heads and applies <c>to_out.0</c> and <c>to_out.1</c> (dropout): <c>[B, Heads, N, HeadDim]</c> → <c>[B, N, QueryDim]</c>.</summary>
    public Tensor ProjectOut(Tensor headsOutput)
    {
        var merged = MergeHeads(headsOutput);
        return to_out[1].call(Project(ToOut, merged));
    }
}
