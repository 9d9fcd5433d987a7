using TorchSharp;
using TorchSharp.Modules;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Training;

/// <summary>
/// AdamW over an explicit list of named parameters. Written here rather than using TorchSharp's so that its
/// state (moments and step counts, always float32 even for half-precision parameters) can be checkpointed and
/// restored bit-exactly, and so that only the parameters of the current stage ever own optimizer state.
/// The update is PyTorch's single-tensor AdamW, computed in one pass over parameter, gradient and moments (on the CPU a
/// vectorised kernel that evaluates each element in double precision and rounds once; see docs/training-at-scale.md).
/// With <see cref="AdamWStateFormat.BlockwiseInt8"/> the moments are stored in 8 bits between steps; on the CPU a fused
/// kernel dequantizes, updates and re-quantizes them block by block, bit-identical to the tensor-op path elsewhere.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    /// <summary>Tensors with fewer elements keep float32 moments under <see cref="AdamWStateFormat.BlockwiseInt8"/>
    /// (bitsandbytes' <c>min_8bit_size</c>): biases and norms, a negligible share of the memory.</summary>
    internal const long DefaultMinQuantizedElements = 4096;

    private const string ExpAvgKey = ".exp_avg";
    private const string ExpAvgSqKey = ".exp_avg_sq";
    private const string CodesKey = ".codes";
    private const string AbsmaxKey = ".absmax";

    private readonly List<(string Name, Parameter Parameter)> _parameters;
    private readonly Dictionary<string, AdamWMoments> _state = new(StringComparer.Ordinal);
    private readonly QuantizationMaps _maps = new();
    private bool _disposed;

    /// <summary>Creates the optimizer for <paramref name="parameters"/> (name → parameter; names key the checkpoint).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The learning rate is not positive and finite.</exception>
    public AdamWOptimizer(IEnumerable<(string Name, Parameter Parameter)> parameters, AdamWOptions options, double learningRate)
        : this(parameters, options, learningRate, AdamWStateFormat.Float32)
    {
    }

    /// <summary>Creates the optimizer for <paramref name="parameters"/> with moments stored as <paramref name="stateFormat"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The learning rate is not positive and finite, or the format is unknown.</exception>
    public AdamWOptimizer(IEnumerable<(string Name, Parameter Parameter)> parameters, AdamWOptions options, double learningRate, AdamWStateFormat stateFormat)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        if (!(learningRate > 0) || double.IsInfinity(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "must be a positive finite number");
        if (!Enum.IsDefined(stateFormat)) throw new ArgumentOutOfRangeException(nameof(stateFormat), stateFormat, "unknown optimizer state format");
        Options = options;
        LearningRate = learningRate;
        StateFormat = stateFormat;
        _parameters = parameters.ToList();
        var duplicates = _parameters.GroupBy(p => p.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
        if (duplicates.Length > 0) throw new ArgumentException($"Parameter names must be unique; repeated: {string.Join(", ", duplicates)}", nameof(parameters));
    }

    /// <summary>Betas, weight decay and epsilon.</summary>
    public AdamWOptions Options { get; }

    /// <summary>The learning rate of the next <see cref="Step"/>; set it between steps to follow a schedule
    /// (warm-up, decay). The moments do not depend on it, so a checkpoint needs only the step count.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive and finite.</exception>
    public double LearningRate
    {
        get;
        set => field = value > 0 && !double.IsInfinity(value) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "the learning rate must be a positive finite number");
    }

    /// <summary>How the moments are stored.</summary>
    public AdamWStateFormat StateFormat { get; }

    /// <summary>Which implementation computes the update (tests and benchmarks compare them; the product uses the one-pass one).</summary>
    internal AdamWUpdatePath UpdatePath { get; set; } = AdamWUpdatePath.OnePass;

    /// <summary>With 8-bit moments and <see cref="AdamWUpdatePath.OnePass"/>: whether contiguous CPU float32 parameters take
    /// the fused kernel (<see cref="AdamW8BitCpuKernel"/>) rather than tensor-op dequantization and quantization around
    /// the update. Both give bit-identical results; tests and benchmarks set false to compare them.</summary>
    internal bool FuseQuantizedUpdate { get; set; } = true;

    /// <summary>The smallest tensor whose moments are quantized under <see cref="AdamWStateFormat.BlockwiseInt8"/>
    /// (experiments set 1 to quantize every tensor of the tiny test models, whose tensors are mostly small).</summary>
    internal long MinQuantizedElements { get; init; } = DefaultMinQuantizedElements;

    /// <summary>Number of completed optimizer steps.</summary>
    public long StepCount { get; private set; }

    /// <summary>The optimized parameters, by name.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _parameters;

    /// <summary>Bytes held by the moments (0 before the first step).</summary>
    public long StateBytes => _state.Values.Sum(s => s.Bytes);

    /// <summary>Bytes the moments of parameters with <paramref name="elementCounts"/> elements take in
    /// <paramref name="format"/> once every parameter has stepped: the state layout, computed without allocating.</summary>
    public static long StateBytesFor(IEnumerable<long> elementCounts, AdamWStateFormat format) =>
        StateBytesFor(elementCounts, format, DefaultMinQuantizedElements);

    internal static long StateBytesFor(IEnumerable<long> elementCounts, AdamWStateFormat format, long minQuantizedElements)
    {
        ArgumentNullException.ThrowIfNull(elementCounts);
        return elementCounts.Sum(n => Quantizes(format, n, minQuantizedElements) ? 2 * BlockwiseQuantizedTensor.BytesFor(n) : 2 * 4 * n);
    }

    private static bool Quantizes(AdamWStateFormat format, long elements, long minQuantizedElements) =>
        format == AdamWStateFormat.BlockwiseInt8 && elements > 0 && elements >= minQuantizedElements;

    private bool Quantizes(long elements) => Quantizes(StateFormat, elements, MinQuantizedElements);

    /// <summary>Clears the gradients of the optimized parameters.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in _parameters)
        {
            var g = p.grad;
            if (g is not null)
            {
                p.grad = null;
                g.Dispose();
            }
        }
    }

    /// <summary>Applies one AdamW update to every parameter that has a gradient.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        StepCount++;
        var s = new AdamWStepScalars(LearningRate, Options.Beta1, Options.Beta2, Options.WeightDecay, Options.Epsilon, StepCount);
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var batch = new List<AdamWTensors>(_parameters.Count);
        var fused = new List<AdamW8BitTensors>();
        bool fuse = UpdatePath == AdamWUpdatePath.OnePass && FuseQuantizedUpdate;
        foreach (var (name, p) in _parameters)
        {
            var grad = p.grad;
            if (grad is null) continue;
            var state = StateOf(name, p);
            var g = grad.dtype == torch.float32 ? grad : grad.to_type(torch.float32);
            bool full = p.dtype == torch.float32;
            if (full && !state.IsQuantized)
            {
                batch.Add(new AdamWTensors(p, g, state.ExpAvg!, state.ExpAvgSq!));
                continue;
            }
            if (full && fuse && AdamW8BitOnePassUpdate.Supports(new AdamW8BitTensors(p, g, state.QuantizedExpAvg!, state.QuantizedExpAvgSq!)))
            {
                fused.Add(new AdamW8BitTensors(p, g, state.QuantizedExpAvg!, state.QuantizedExpAvgSq!));
                continue;
            }
            // A float32 master copy (half-precision parameter) or dequantized moments are temporaries: update such
            // parameters one at a time so that only one parameter's worth of them is alive.
            using var inner = torch.NewDisposeScope();
            var master = full ? p : p.to_type(torch.float32);
            var quantized = state.IsQuantized ? new AdamW8BitTensors(master, g, state.QuantizedExpAvg!, state.QuantizedExpAvgSq!) : default;
            if (state.IsQuantized && fuse && AdamW8BitOnePassUpdate.Supports(quantized))
            {
                AdamW8BitOnePassUpdate.Apply([quantized], s);
            }
            else if (state.IsQuantized)
            {
                var m = state.QuantizedExpAvg!.Dequantize(_maps).view(p.shape);
                var v = state.QuantizedExpAvgSq!.Dequantize(_maps).view(p.shape);
                Update([new AdamWTensors(master, g, m, v)], s);
                state.QuantizedExpAvg.Quantize(m, _maps);
                state.QuantizedExpAvgSq.Quantize(v, _maps);
            }
            else
            {
                Update([new AdamWTensors(master, g, state.ExpAvg!, state.ExpAvgSq!)], s);
            }
            if (!full) p.copy_(master);
        }
        Update(batch, s);
        AdamW8BitOnePassUpdate.Apply(fused, s);
    }

    private void Update(IReadOnlyList<AdamWTensors> items, in AdamWStepScalars s)
    {
        if (UpdatePath == AdamWUpdatePath.MultiOp)
        {
            foreach (var t in items) AdamWMultiOpUpdate.Apply(t.Param, t.Grad, t.ExpAvg, t.ExpAvgSq, s);
            return;
        }
        AdamWOnePassUpdate.Apply(items, s, useCpuKernel: UpdatePath == AdamWUpdatePath.OnePass);
    }

    private AdamWMoments StateOf(string name, Parameter p)
    {
        if (!_state.TryGetValue(name, out var state))
        {
            long n = p.NumberOfElements;
            state = Quantizes(n)
                ? AdamWMoments.Quantized(BlockwiseQuantizedTensor.Zeros(n, signed: true, p.device), BlockwiseQuantizedTensor.Zeros(n, signed: false, p.device))
                : AdamWMoments.ZerosLike(p);
            _state[name] = state;
        }
        return state;
    }

    /// <summary>
    /// The state to checkpoint (CPU copies): float32 moments under "&lt;name&gt;.exp_avg" / ".exp_avg_sq"; 8-bit moments
    /// as "&lt;name&gt;.exp_avg.codes" (uint8) and ".exp_avg.absmax" (float32 block scales), likewise for ".exp_avg_sq".
    /// </summary>
    public Dictionary<string, torch.Tensor> StateTensors()
    {
        var result = StateViews();
        foreach (var key in result.Keys.ToArray())
        {
            var view = result[key];
            result[key] = view.clone();
            view.Dispose();
        }
        return result;
    }

    /// <summary>
    /// The same tensors as <see cref="StateTensors"/> without the copy on the CPU: new handles on the live moments (CPU
    /// copies on other devices), valid until the next <see cref="Step"/>; disposing them leaves the optimizer intact. For
    /// writing a checkpoint right away — the copies cost as much memory again as the moments (6.45 GiB for SD 2.1's
    /// U-Net in float32), at the moment a stage-3 run is at its largest.
    /// </summary>
    public Dictionary<string, torch.Tensor> StateViews()
    {
        static torch.Tensor View(torch.Tensor t)
        {
            var detached = t.detach();
            if (detached.device_type == DeviceType.CPU) return detached;
            var cpu = detached.cpu();
            detached.Dispose();
            return cpu;
        }

        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var (name, s) in _state)
        {
            if (s.IsQuantized)
            {
                foreach (var (key, q) in new[] { (ExpAvgKey, s.QuantizedExpAvg!), (ExpAvgSqKey, s.QuantizedExpAvgSq!) })
                {
                    result[name + key + CodesKey] = View(q.Codes);
                    result[name + key + AbsmaxKey] = View(q.Absmax);
                }
            }
            else
            {
                result[name + ExpAvgKey] = View(s.ExpAvg!);
                result[name + ExpAvgSqKey] = View(s.ExpAvgSq!);
            }
        }
        return result;
    }

    /// <summary>Restores the state written by <see cref="StateTensors"/> and the step count.</summary>
    /// <exception cref="ArgumentException">A tensor names no optimized parameter, is of an unknown kind, has the wrong
    /// shape or type, or is stored in the other <see cref="StateFormat"/> (8-bit vs float32 moments).</exception>
    public void LoadState(IReadOnlyDictionary<string, torch.Tensor> tensors, long stepCount)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        var byName = _parameters.ToDictionary(p => p.Name, p => p.Parameter);
        var entries = new Dictionary<string, Dictionary<string, torch.Tensor>>(StringComparer.Ordinal);
        foreach (var (key, value) in tensors)
        {
            string? suffix = new[] { ExpAvgSqKey + CodesKey, ExpAvgSqKey + AbsmaxKey, ExpAvgKey + CodesKey, ExpAvgKey + AbsmaxKey, ExpAvgSqKey, ExpAvgKey }
                .FirstOrDefault(k => key.EndsWith(k, StringComparison.Ordinal));
            if (suffix is null) throw new ArgumentException($"Unrecognised optimizer state tensor '{key}'.", nameof(tensors));
            string name = key[..^suffix.Length];
            if (!byName.ContainsKey(name)) throw new ArgumentException($"Optimizer state for '{name}', which this optimizer does not train.", nameof(tensors));
            if (!entries.TryGetValue(name, out var parts)) entries[name] = parts = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
            parts[suffix] = value;
        }

        var restored = new Dictionary<string, AdamWMoments>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, parts) in entries) restored[name] = Restore(name, byName[name], parts);
        }
        catch
        {
            foreach (var s in restored.Values) s.Dispose();
            throw;
        }
        ClearState();
        foreach (var (name, s) in restored) _state[name] = s;
        StepCount = stepCount;
    }

    private AdamWMoments Restore(string name, Parameter p, Dictionary<string, torch.Tensor> parts)
    {
        bool stored8Bit = parts.Keys.Any(k => k.EndsWith(CodesKey, StringComparison.Ordinal) || k.EndsWith(AbsmaxKey, StringComparison.Ordinal));
        bool expect8Bit = Quantizes(p.NumberOfElements);
        if (stored8Bit != expect8Bit)
        {
            throw new ArgumentException(
                $"Optimizer state for '{name}' holds {(stored8Bit ? "8-bit" : "float32")} moments, but this optimizer keeps {(expect8Bit ? "8-bit" : "float32")} " +
                $"moments for it (state format {StateFormat}); resume with the 8-bit optimizer-state setting of the run that wrote the checkpoint.", "tensors");
        }
        string shape = $"[{string.Join(",", p.shape)}]";
        if (!expect8Bit)
        {
            if (!parts.TryGetValue(ExpAvgKey, out var m)) throw new ArgumentException($"Optimizer state for '{name}' lacks exp_avg.", "tensors");
            if (!parts.TryGetValue(ExpAvgSqKey, out var sq)) throw new ArgumentException($"Optimizer state for '{name}' lacks exp_avg_sq.", "tensors");
            if (!m.shape.SequenceEqual(p.shape) || !sq.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"Optimizer state for '{name}' has shape [{string.Join(",", m.shape)}], the parameter {shape}.", "tensors");
            if (!m.is_floating_point() || !sq.is_floating_point()) throw new ArgumentException($"Optimizer state for '{name}' is not floating point.", "tensors");
            return AdamWMoments.CopyOf(p, m, sq);
        }

        long n = p.NumberOfElements, blocks = BlockwiseQuantizedTensor.BlockCount(n);
        BlockwiseQuantizedTensor Read(string moment, bool signed)
        {
            if (!parts.TryGetValue(moment + CodesKey, out var codes) || !parts.TryGetValue(moment + AbsmaxKey, out var absmax))
                throw new ArgumentException($"Optimizer state for '{name}' lacks {moment[1..]}{CodesKey} or {moment[1..]}{AbsmaxKey}.", "tensors");
            if (codes.dtype != torch.ScalarType.Byte || codes.shape.Length != 1 || codes.shape[0] != n)
                throw new ArgumentException($"Optimizer state '{name}{moment}{CodesKey}' must be uint8 [{n}] for parameter {shape}; it is {codes.dtype} [{string.Join(",", codes.shape)}].", "tensors");
            if (absmax.dtype != torch.ScalarType.Float32 || absmax.shape.Length != 1 || absmax.shape[0] != blocks)
                throw new ArgumentException($"Optimizer state '{name}{moment}{AbsmaxKey}' must be float32 [{blocks}] (blocks of {BlockwiseQuantizedTensor.BlockSize}); it is {absmax.dtype} [{string.Join(",", absmax.shape)}].", "tensors");
            using (var scope = torch.NewDisposeScope())
            {
                if (!absmax.isfinite().all().item<bool>() || absmax.lt(Kept(0)).any().item<bool>())
                    throw new ArgumentException($"Optimizer state '{name}{moment}{AbsmaxKey}' holds negative or non-finite block scales.", "tensors");
            }
            return BlockwiseQuantizedTensor.FromStored(codes, absmax, signed, p.device);
        }
        var first = Read(ExpAvgKey, signed: true);
        try
        {
            return AdamWMoments.Quantized(first, Read(ExpAvgSqKey, signed: false));
        }
        catch
        {
            first.Dispose();
            throw;
        }
    }

    private void ClearState()
    {
        foreach (var s in _state.Values) s.Dispose();
        _state.Clear();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ClearState();
        _maps.Dispose();
    }
}
