using System.Globalization;
using AttnDreamBooth.Models.Attention;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using TorchSharp;
using static TorchSharp.torch;
using AttentionModule = AttnDreamBooth.Models.Attention.Attention;

namespace AttnDreamBooth.Benchmarks.Attention;

/// <summary>Which passes a benchmark measures.</summary>
public enum AttentionPass
{
    /// <summary>Inference: forward under no_grad.</summary>
    Forward,

    /// <summary>Training: forward with autograd, then backward of the output sum (plus the recorded maps' sum for the recorder).</summary>
    ForwardBackward,
}

/// <summary>Columns for the attention benchmarks (the job comes from the command line, see docs/benchmarks.md).</summary>
public sealed class AttentionBenchmarkConfig : ManualConfig
{
    public AttentionBenchmarkConfig()
    {
        AddColumn(new PeakNativeMemoryColumn());
        WithOption(ConfigOptions.JoinSummary, true);
    }
}

/// <summary>
/// One attention layer at Stable Diffusion 2.1-base sizes (batch 1, head size 64), computed four ways with the same
/// weights: (a) raw libtorch SDPA with the same q/k/v/out projections, (b) our <see cref="AttentionModule"/> with the
/// default processor, (c) naive matmul → softmax → matmul, (d) our recording processor capturing two tokens.
/// </summary>
public abstract class AttentionKernelBenchmarkBase
{
    private const int HeadDim = 64;
    private AttentionModule _attn = null!;
    private Tensor _x = null!;
    private Tensor? _text;
    private AttentionContext _context = null!;
    private AttentionMapStore _store = null!;
    private RecordingAttentionProcessor _recorder = null!;

    [Params(AttentionPass.Forward, AttentionPass.ForwardBackward)]
    public AttentionPass Pass { get; set; }

    internal static string Key(string type, string method, IEnumerable<string> parameterValues) =>
        string.Join(".", new[] { type, method }.Concat(parameterValues));

    /// <summary>Builds the layer for a grid of <paramref name="side"/> x <paramref name="side"/> query tokens.</summary>
    protected void Setup(int side, int heads, int? crossAttentionDim)
    {
        PeakNativeMemory.Configure();
        manual_seed(0);
        int channels = heads * HeadDim;
        _attn = new AttentionModule(channels, crossAttentionDim, heads, HeadDim);
        var g = new Generator(1);
        _x = randn([1, side * side, channels], generator: g).requires_grad_(true);
        _text = crossAttentionDim is { } c ? randn([1, 77, c], generator: g) : null;
        _context = new AttentionContext(side, side);
        _store = new AttentionMapStore();
        _recorder = new RecordingAttentionProcessor(_store, AttentionTokenSelection.Positions(5, 6)) { ClearOnForward = false };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        PeakNativeMemory.Flush();
        _store.Dispose();
        _attn.Dispose();
        _x.Dispose();
        _text?.Dispose();
    }

    /// <summary>(a) libtorch's fused kernel called directly, with the same projections.</summary>
    protected void RunRawSdpa() => Run(nameof(RunRawSdpa), () =>
    {
        var source = _text ?? _x;
        var q = Heads(nn.functional.linear(_x, _attn.ToQ.weight!));
        var k = Heads(nn.functional.linear(source, _attn.ToK.weight!));
        var v = Heads(nn.functional.linear(source, _attn.ToV.weight!));
        var o = nn.functional.scaled_dot_product_attention(q, k, v);
        return nn.functional.linear(Merge(o), _attn.ToOut.weight!, _attn.ToOut.bias);
    });

    /// <summary>(b) our Attention module with the default processor.</summary>
    protected void RunAttentionDefault() => Run(nameof(RunAttentionDefault), () =>
    {
        _attn.Processor = ScaledDotProductAttentionProcessor.Instance;
        return _attn.call(_x, _text, _context);
    });

    /// <summary>(c) naive matmul-softmax-matmul, same projections.</summary>
    protected void RunNaive() => Run(nameof(RunNaive), () =>
    {
        var source = _text ?? _x;
        var q = Heads(nn.functional.linear(_x, _attn.ToQ.weight!));
        var k = Heads(nn.functional.linear(source, _attn.ToK.weight!));
        var v = Heads(nn.functional.linear(source, _attn.ToV.weight!));
        var probs = matmul(q, k.transpose(-1, -2)).mul(_attn.Scale).softmax(-1);
        return nn.functional.linear(Merge(matmul(probs, v)), _attn.ToOut.weight!, _attn.ToOut.bias);
    });

    /// <summary>(d) our recording processor capturing two tokens.</summary>
    protected void RunRecording() => Run(nameof(RunRecording), () =>
    {
        _attn.Processor = _recorder;
        var y = _attn.call(_x, _text, _context);
        return _store.Count == 0 ? y : y.add(_store.Maps[0].Probabilities.sum());
    });

    private Tensor Heads(Tensor t) => t.view(t.shape[0], t.shape[1], _attn.Heads, HeadDim).transpose(1, 2);

    private static Tensor Merge(Tensor t) => t.transpose(1, 2).reshape(t.shape[0], t.shape[2], t.shape[1] * t.shape[3]);

    private void Run(string method, Func<Tensor> forward)
    {
        string name = method.StartsWith("Run", StringComparison.Ordinal) ? method[3..] : method;
        using (PeakNativeMemory.Measure(KeyFor(name)))
        using (var scope = NewDisposeScope())
        {
            if (Pass == AttentionPass.Forward)
            {
                using var noGrad = no_grad();
                forward();
            }
            else
            {
                forward().sum().backward();
                _attn.zero_grad();
                _x.grad?.zero_();
            }
            _store.Clear();
        }
    }

    /// <summary>The result key of a method with the current parameter values (parameters sorted by name, as the column does).</summary>
    protected abstract string KeyFor(string method);

    /// <summary>Formats a value as BenchmarkDotNet prints parameters.</summary>
    protected static string Invariant(object value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
}
