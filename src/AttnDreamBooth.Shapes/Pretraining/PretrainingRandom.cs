using TorchSharp;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// The pretraining run's random streams, one seeded libtorch generator each, so that how one is consumed never shifts
/// another and a checkpoint restores all of them exactly. The seeds derive from the recipe's seed as the recipes of the
/// shipped models were run with, so the documented command reproduces them.
/// </summary>
internal sealed class PretrainingRandom : IDisposable
{
    private static readonly string[] Names = ["noise", "timesteps", "data_order", "latent_sample"];

    private readonly torch.Generator[] _generators;

    /// <summary>Every stream from one seed (each with a distinct derived seed).</summary>
    public PretrainingRandom(long seed)
    {
        _generators = new torch.Generator[Names.Length];
        for (int i = 0; i < Names.Length; i++)
        {
            ulong derived = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)(i + 1) * 0xBF58476D1CE4E5B9UL);
            _generators[i] = new torch.Generator(derived >> 1);
        }
    }

    /// <summary>Gaussian noise added to latents.</summary>
    public torch.Generator Noise => _generators[0];

    /// <summary>Training timesteps.</summary>
    public torch.Generator Timesteps => _generators[1];

    /// <summary>Which captions are dropped for classifier-free guidance.</summary>
    public torch.Generator DataOrder => _generators[2];

    /// <summary>Samples of the VAE posterior.</summary>
    public torch.Generator LatentSample => _generators[3];

    /// <summary>Every stream's state as a byte tensor, keyed <c>rng.&lt;name&gt;</c>.</summary>
    public Dictionary<string, torch.Tensor> SaveState()
    {
        // get_state() hands out a handle of its own; the scope disposes it once cloned.
        using var scope = torch.NewDisposeScope();
        var state = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        for (int i = 0; i < Names.Length; i++) state["rng." + Names[i]] = _generators[i].get_state().clone();
        scope.MoveToOuter(state.Values);
        return state;
    }

    /// <summary>Restores the states <see cref="SaveState"/> wrote (other keys are ignored).</summary>
    /// <exception cref="ArgumentException">A stream's state is missing.</exception>
    public void LoadState(IReadOnlyDictionary<string, torch.Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        for (int i = 0; i < Names.Length; i++)
        {
            if (!state.TryGetValue("rng." + Names[i], out var s)) throw new ArgumentException($"The checkpoint has no state for random stream '{Names[i]}'.", nameof(state));
            _generators[i].set_state(s);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var g in _generators) g.Dispose();
    }
}
