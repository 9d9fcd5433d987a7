using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>The bookkeeping behind <see cref="IHookedParameterHost"/>: hooked parameters by the module path of the layer
/// whose hook runs them. Not a module field type, so the parameters are never registered as the model's own.</summary>
internal sealed class HookedParameters
{
    private readonly Dictionary<string, IReadOnlyList<Parameter>> _byPath = new(StringComparer.Ordinal);

    public void Attach(string modulePath, IReadOnlyList<Parameter> parameters)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentNullException.ThrowIfNull(parameters);
        _byPath[modulePath] = parameters.ToArray();
    }

    public void Detach(string modulePath) => _byPath.Remove(modulePath);

    /// <summary>The hooked parameters of layers whose path starts with <paramref name="prefix"/> (e.g. <c>down_blocks.0.</c>).</summary>
    public IEnumerable<Parameter> Under(string prefix)
    {
        if (_byPath.Count == 0) return [];
        return _byPath.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).SelectMany(p => p.Value).ToArray();
    }
}
