using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// An exponential moving average of trained parameters, kept as float32 copies beside them and stored in the checkpoints
/// under <see cref="Prefix"/> + the parameter's name, so a resumed run averages on exactly as an uninterrupted one.
/// </summary>
internal sealed class WeightAverage : IDisposable
{
    /// <summary>Prefix of the averaged tensors in a checkpoint (<c>ema.unet.…</c>, <c>ema.text_encoder.…</c>).</summary>
    public const string Prefix = "ema.";

    private readonly (Tensor Parameter, Tensor Average)[] _entries;
    private readonly string[] _names;
    private readonly double _decay;

    /// <summary>Starts the average at the parameters' current values, or at <paramref name="stored"/>'s averages when resuming.</summary>
    /// <exception cref="ArgumentException">A stored average is missing or has another shape.</exception>
    public WeightAverage(IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters, double decay, IReadOnlyDictionary<string, Tensor>? stored)
    {
        if (!(decay > 0 && decay < 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "must be in (0, 1)");
        _decay = decay;
        _names = [.. parameters.Select(p => p.Name)];
        _entries = new (Tensor, Tensor)[parameters.Count];
        using var _ = no_grad();
        for (int i = 0; i < parameters.Count; i++)
        {
            var (name, parameter) = parameters[i];
            Tensor source = parameter;
            if (stored is not null)
            {
                if (!stored.TryGetValue(Prefix + name, out var saved))
                    throw new ArgumentException($"The checkpoint lacks the weight average '{Prefix + name}'.", nameof(stored));
                if (!saved.shape.SequenceEqual(parameter.shape))
                    throw new ArgumentException($"'{Prefix + name}' is [{string.Join(", ", saved.shape)}] in the checkpoint, [{string.Join(", ", parameter.shape)}] in the model.", nameof(stored));
                source = saved;
            }
            using var detached = source.detach();
            _entries[i] = (parameter, detached.to(float32, parameter.device, copy: true));
        }
    }

    /// <summary>
    /// The decay of the average's update number <paramref name="updates"/> (0-based): (1 + n) / (10 + n), capped at the
    /// configured decay — the warm-up diffusers' <c>EMAModel</c> uses, so the first updates are not dominated by the
    /// initial weights (which from scratch are random).
    /// </summary>
    public static double DecayAt(double decay, int updates) => Math.Min(decay, (1.0 + updates) / (10.0 + updates));

    /// <summary>Moves the average towards the parameters' current values (call after the optimizer step
    /// <paramref name="updates"/>, 0-based).</summary>
    public void Update(int updates)
    {
        double d = DecayAt(_decay, updates);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (parameter, average) in _entries)
            average.mul_(Kept(d)).add_(parameter.detach().to(float32), Kept(1 - d));
    }

    /// <summary>The averages under their checkpoint names (live tensors, not copies).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> Tensors() =>
        _names.Select((name, i) => new KeyValuePair<string, Tensor>(Prefix + name, _entries[i].Average));

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var (_, average) in _entries) average.Dispose();
    }
}
