namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// kohya module name → diffusers module path for one model. kohya names replace every '.' of the path by '_', which
/// is ambiguous (<c>to_out_0</c>, <c>transformer_blocks</c>, <c>proj_in</c>), so names are resolved by converting the
/// model's own module paths the same way and looking them up, never by turning '_' back into '.'.
/// </summary>
internal sealed class LoraKeyMap
{
    private readonly Dictionary<string, string> _paths = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ambiguous = new(StringComparer.Ordinal);

    /// <summary>Builds the map from module paths (e.g. the model's Linear/Conv2d layers, or the state-dict keys of its
    /// weights without the <c>.weight</c> suffix).</summary>
    public LoraKeyMap(LoraComponent component, IEnumerable<string> modulePaths)
    {
        ArgumentNullException.ThrowIfNull(modulePaths);
        Component = component;
        foreach (string path in modulePaths)
        {
            string name = LoraComponentNames.KohyaName(component, path);
            if (_paths.TryGetValue(name, out var other) && other != path) _ambiguous.Add(name);
            else _paths[name] = path;
        }
    }

    /// <summary>For the Linear and Conv2d layers of <paramref name="model"/>.</summary>
    public static LoraKeyMap For(LoraComponent component, TorchSharp.torch.nn.Module model) =>
        new(component, LoraTargets.Layers(model).Select(l => l.Path));

    /// <summary>The component the names belong to.</summary>
    public LoraComponent Component { get; }

    /// <summary>Number of distinct kohya names.</summary>
    public int Count => _paths.Count;

    /// <summary>kohya names that two different module paths produce (none in the SD 1.x / 2.x models).</summary>
    public IReadOnlyCollection<string> Ambiguous => _ambiguous;

    /// <summary>The module path of <paramref name="kohyaName"/> (with its <c>lora_unet_</c>/<c>lora_te_</c> prefix).</summary>
    public bool TryResolve(string kohyaName, out string modulePath)
    {
        modulePath = "";
        if (_ambiguous.Contains(kohyaName) || !_paths.TryGetValue(kohyaName, out var p)) return false;
        modulePath = p;
        return true;
    }
}
