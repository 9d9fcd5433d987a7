using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// The optimizer of a pretraining phase: one <see cref="AdamWOptimizer"/> per network, each at the phase's learning rate
/// times its own scale. AdamW updates every element on its own, so groups at scale 1 step exactly as one optimizer over
/// all their parameters would; the checkpoint keys (parameter names) are the same as one optimizer's too.
/// </summary>
internal sealed class PhaseOptimizer : IDisposable
{
    private readonly List<Group> _groups = [];

    /// <param name="options">Betas, weight decay and epsilon of every group.</param>
    /// <param name="groups">Each network's parameters (their names all start with <c>Prefix</c>, which routes checkpointed
    /// state back to the group) and the scale of its learning rate.</param>
    public PhaseOptimizer(AdamWOptions options, params (string Prefix, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double Scale)[] groups)
    {
        try
        {
            foreach (var (prefix, parameters, scale) in groups)
            {
                if (parameters.FirstOrDefault(p => !p.Name.StartsWith(prefix, StringComparison.Ordinal)) is { Name: { } stray })
                    throw new ArgumentException($"Parameter '{stray}' is not under its group's prefix '{prefix}'.", nameof(groups));
                if (!(scale > 0) || double.IsInfinity(scale)) throw new ArgumentOutOfRangeException(nameof(groups), scale, "a group's learning-rate scale must be positive and finite");
                // The rate is set before every step; 1 only satisfies the constructor.
                _groups.Add(new Group(prefix, new AdamWOptimizer(parameters, options, learningRate: 1), scale));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The phase's learning rate for the next step; each group steps at this times its scale.</summary>
    public double LearningRate
    {
        set
        {
            foreach (var g in _groups) g.Optimizer.LearningRate = value * g.Scale;
        }
    }

    /// <summary>Every optimized parameter, group by group.</summary>
    public IEnumerable<Parameter> Parameters => _groups.SelectMany(g => g.Optimizer.Parameters.Select(p => p.Parameter));

    public void ZeroGrad()
    {
        foreach (var g in _groups) g.Optimizer.ZeroGrad();
    }

    public void Step()
    {
        foreach (var g in _groups) g.Optimizer.Step();
    }

    /// <summary>Every group's <see cref="AdamWOptimizer.StateViews"/>, keyed by parameter name as one optimizer's are.</summary>
    public IEnumerable<KeyValuePair<string, torch.Tensor>> StateViews() => _groups.SelectMany(g => g.Optimizer.StateViews());

    /// <summary>Gives each group the checkpointed state of its own parameters.</summary>
    /// <exception cref="ArgumentException">A tensor belongs to no group, or a group rejects its state.</exception>
    public void LoadState(IReadOnlyDictionary<string, torch.Tensor> tensors, long stepCount)
    {
        var parts = _groups.Select(_ => new Dictionary<string, torch.Tensor>(StringComparer.Ordinal)).ToList();
        foreach (var (key, value) in tensors)
        {
            int index = _groups.FindIndex(g => key.StartsWith(g.Prefix, StringComparison.Ordinal));
            if (index < 0) throw new ArgumentException($"Optimizer state '{key}' belongs to none of the phase's networks ({string.Join(", ", _groups.Select(g => g.Prefix))}).", nameof(tensors));
            parts[index][key] = value;
        }
        for (int i = 0; i < _groups.Count; i++) _groups[i].Optimizer.LoadState(parts[i], stepCount);
    }

    public void Dispose()
    {
        foreach (var g in _groups) g.Optimizer.Dispose();
        _groups.Clear();
    }

    private sealed record Group(string Prefix, AdamWOptimizer Optimizer, double Scale);
}
