using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Pipelines.Training;

/// <summary>
/// AdamW over an explicit list of named parameters. Written here rather than using TorchSharp's so that its
/// state (moments and step counts, always float32 even for half-precision parameters) can be checkpointed and
/// restored bit-exactly, and so that only the parameters of the current stage ever own optimizer state.
/// The update is PyTorch's single-tensor AdamW.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private readonly List<(string Name, Parameter Parameter)> _parameters;
    private readonly Dictionary<string, (torch.Tensor ExpAvg, torch.Tensor ExpAvgSq)> _state = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Creates the optimizer for <paramref name="parameters"/> (name → parameter; names key the checkpoint).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The learning rate is not positive and finite.</exception>
    public AdamWOptimizer(IEnumerable<(string Name, Parameter Parameter)> parameters, AdamWOptions options, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        if (!(learningRate > 0) || double.IsInfinity(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "must be a positive finite number");
        Options = options;
        LearningRate = learningRate;
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

    /// <summary>Number of completed optimizer steps.</summary>
    public long StepCount { get; private set; }

    /// <summary>The optimized parameters, by name.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _parameters;

    /// <summary>Bytes held by the moment tensors (0 before the first step).</summary>
    public long StateBytes => _state.Values.Sum(s => (s.ExpAvg.NumberOfElements + s.ExpAvgSq.NumberOfElements) * s.ExpAvg.ElementSize);

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
        double b1 = Options.Beta1, b2 = Options.Beta2, lr = LearningRate;
        double biasCorrection1 = 1 - Math.Pow(b1, StepCount);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(b2, StepCount));
        double stepSize = lr / biasCorrection1;
        using var _ = torch.no_grad();
        foreach (var (name, p) in _parameters)
        {
            var grad = p.grad;
            if (grad is null) continue;
            using var scope = torch.NewDisposeScope();
            if (!_state.TryGetValue(name, out var s))
            {
                s = (torch.zeros_like(p, dtype: torch.float32).DetachFromDisposeScope(), torch.zeros_like(p, dtype: torch.float32).DetachFromDisposeScope());
                _state[name] = s;
            }
            bool full = p.dtype == torch.float32;
            var master = full ? p : p.to_type(torch.float32);
            var g = grad.dtype == torch.float32 ? grad : grad.to_type(torch.float32);
            master.mul_(1 - lr * Options.WeightDecay);
            s.ExpAvg.mul_(b1).add_(g, alpha: 1 - b1);
            s.ExpAvgSq.mul_(b2).addcmul_(g, g, value: 1 - b2);
            var denom = s.ExpAvgSq.sqrt().div_(biasCorrection2Sqrt).add_(Options.Epsilon);
            master.addcdiv_(s.ExpAvg, denom, value: -stepSize);
            if (!full) p.copy_(master);
        }
    }

    /// <summary>The state to checkpoint: moments under "&lt;name&gt;.exp_avg" / ".exp_avg_sq" (CPU copies).</summary>
    public Dictionary<string, torch.Tensor> StateTensors()
    {
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var (name, s) in _state)
        {
            result[name + ".exp_avg"] = s.ExpAvg.detach().cpu().clone();
            result[name + ".exp_avg_sq"] = s.ExpAvgSq.detach().cpu().clone();
        }
        return result;
    }

    /// <summary>Restores the state written by <see cref="StateTensors"/> and the step count.</summary>
    /// <exception cref="ArgumentException">A tensor names no optimized parameter or has the wrong shape.</exception>
    public void LoadState(IReadOnlyDictionary<string, torch.Tensor> tensors, long stepCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        var byName = _parameters.ToDictionary(p => p.Name, p => p.Parameter);
        ClearState();
        foreach (string key in tensors.Keys.Where(k => k.EndsWith(".exp_avg", StringComparison.Ordinal)))
        {
            string name = key[..^".exp_avg".Length];
            if (!byName.TryGetValue(name, out var p)) throw new ArgumentException($"Optimizer state for '{name}', which this optimizer does not train.", nameof(tensors));
            if (!tensors.TryGetValue(name + ".exp_avg_sq", out var sq)) throw new ArgumentException($"Optimizer state for '{name}' lacks exp_avg_sq.", nameof(tensors));
            var m = tensors[key];
            if (!m.shape.SequenceEqual(p.shape) || !sq.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"Optimizer state for '{name}' has shape [{string.Join(",", m.shape)}], the parameter [{string.Join(",", p.shape)}].", nameof(tensors));
            _state[name] = (m.to(torch.float32, p.device).clone().DetachFromDisposeScope(), sq.to(torch.float32, p.device).clone().DetachFromDisposeScope());
        }
        StepCount = stepCount;
    }

    private void ClearState()
    {
        foreach (var (m, v) in _state.Values)
        {
            m.Dispose();
            v.Dispose();
        }
        _state.Clear();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ClearState();
    }
}
