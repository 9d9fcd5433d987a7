using TorchSharp;

namespace AttnDreamBooth.Training;

/// <summary>
/// The independent random streams of a training run, each its own seeded generator, so that changing how one
/// is consumed (e.g. more augmentation variants) does not shift the others, and so all of them can be
/// checkpointed and restored exactly.
/// </summary>
internal sealed class RandomStreams : IDisposable
{
    /// <summary>The stream names, in a fixed order.</summary>
    public static readonly IReadOnlyList<string> Names = ["noise", "timesteps", "data_order", "latent_sample"];

    private readonly Dictionary<string, torch.Generator> _generators = new(StringComparer.Ordinal);

    /// <summary>Creates every stream from one seed (each stream gets a distinct derived seed).</summary>
    public RandomStreams(long seed)
    {
        Seed = seed;
        for (int i = 0; i < Names.Count; i++)
        {
            ulong derived = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)(i + 1) * 0xBF58476D1CE4E5B9UL);
            _generators[Names[i]] = new torch.Generator(derived >> 1);
        }
        Augmentation = new SeededRandom(unchecked(seed * 31 + 0x5DEECE66DL));
    }

    /// <summary>The run's seed.</summary>
    public long Seed { get; }

    /// <summary>The generator for Gaussian noise added to latents.</summary>
    public torch.Generator Noise => _generators["noise"];

    /// <summary>The generator for training timesteps.</summary>
    public torch.Generator Timesteps => _generators["timesteps"];

    /// <summary>The generator for image augmentation (the data pipeline's own checkpointable PRNG).</summary>
    public SeededRandom Augmentation { get; private set; }

    /// <summary>The generator for the order in which images are drawn.</summary>
    public torch.Generator DataOrder => _generators["data_order"];

    /// <summary>The generator for sampling VAE posteriors.</summary>
    public torch.Generator LatentSample => _generators["latent_sample"];

    /// <summary>Every stream's state as a byte tensor, keyed "rng.&lt;name&gt;".</summary>
    public Dictionary<string, torch.Tensor> SaveState()
    {
        // get_state() hands out a handle of its own; the scope disposes it once cloned.
        using var scope = torch.NewDisposeScope();
        var state = _generators.ToDictionary(p => "rng." + p.Key, p => p.Value.get_state().clone());
        state["rng.augmentation"] = torch.tensor(Augmentation.GetState().Select(v => unchecked((long)v)).ToArray());
        scope.MoveToOuter(state.Values);
        return state;
    }

    /// <summary>Restores states written by <see cref="SaveState"/>.</summary>
    /// <exception cref="ArgumentException">A stream's state is missing.</exception>
    public void LoadState(IReadOnlyDictionary<string, torch.Tensor> state)
    {
        foreach (var (name, generator) in _generators)
        {
            if (!state.TryGetValue("rng." + name, out var s)) throw new ArgumentException($"The checkpoint has no state for random stream '{name}'.", nameof(state));
            generator.set_state(s);
        }
        if (!state.TryGetValue("rng.augmentation", out var augmentation) || augmentation.NumberOfElements != 4)
            throw new ArgumentException("The checkpoint has no state for random stream 'augmentation'.", nameof(state));
        Augmentation = SeededRandom.FromState(augmentation.data<long>().ToArray().Select(v => unchecked((ulong)v)).ToArray());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var g in _generators.Values) g.Dispose();
        _generators.Clear();
    }
}
