using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>Options for <see cref="StateDictLoader.Load"/>.</summary>
internal sealed record StateDictLoadOptions
{
    /// <summary>Throw <see cref="InvalidWeightsException"/> unless the keys match exactly (default true).
    /// Shape mismatches always throw, strict or not.</summary>
    public bool Strict { get; init; } = true;

    /// <summary>Maps a stored key to the module's key (null drops the key silently). Applied before matching,
    /// e.g. to rename legacy VAE attention names.</summary>
    public Func<string, string?>? KeyMap { get; init; }

    /// <summary>Module keys that need not be present in the source (e.g. non-persistent buffers).</summary>
    public Func<string, bool>? OptionalModuleKey { get; init; }

    /// <summary>Check that every floating-point tensor read holds only finite values, and throw
    /// <see cref="InvalidWeightsException"/> naming those that do not (default true). The check is one
    /// <c>isfinite().all()</c> per tensor; turn it off only for trusted files.</summary>
    public bool CheckFinite { get; init; } = true;
}

/// <summary>Loads named tensors into a module's parameters and buffers by exact name.</summary>
internal static class StateDictLoader
{
    /// <summary>
    /// Copies every tensor of <paramref name="source"/> into the module entry of the same name, converting the
    /// dtype to the module's and reading straight onto the module tensor's device. Keys and shapes are checked
    /// from the headers before anything is read, so a failed strict load leaves the module untouched.
    /// </summary>
    /// <remarks>With <see cref="StateDictLoadOptions.CheckFinite"/>, a tensor holding NaN or infinity is not copied and
    /// <see cref="InvalidWeightsException"/> is thrown after every tensor has been read, so the module may be left
    /// partly loaded: to change a live module all-or-nothing, call <see cref="Validate"/> first.</remarks>
    public static StateDictLoadReport Load(torch.nn.Module module, IStateDictSource source, StateDictLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new StateDictLoadOptions();
        var target = module.state_dict();
        var (plan, report) = Plan(target, source, options);
        var nonFinite = new List<string>();
        using (torch.no_grad())
        {
            foreach (var (stored, key) in plan)
            {
                var destination = target[key];
                using var value = source.Read(stored, destination.dtype, destination.device);
                if (options.CheckFinite && !WeightChecks.IsFinite(value))
                {
                    nonFinite.Add(stored);
                    continue;
                }
                destination.copy_(value);
            }
        }
        if (nonFinite.Count > 0) throw InvalidWeightsException.NonFinite(SourceText(source), nonFinite);
        return report;
    }

    /// <summary>
    /// Everything <see cref="Load"/> checks, without changing <paramref name="module"/>: keys and shapes from the
    /// headers and, with <see cref="StateDictLoadOptions.CheckFinite"/>, every tensor's values (each is read once and
    /// released). Returns the report <see cref="Load"/> would return.
    /// </summary>
    /// <exception cref="InvalidWeightsException">Missing, unexpected or mis-shaped keys.</exception>
    /// <exception cref="InvalidWeightsException">A tensor holds NaN or infinity; all such tensors are named.</exception>
    public static StateDictLoadReport Validate(torch.nn.Module module, IStateDictSource source, StateDictLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new StateDictLoadOptions();
        var target = module.state_dict();
        var (plan, report) = Plan(target, source, options);
        if (!options.CheckFinite) return report;
        var nonFinite = new List<string>();
        using (torch.no_grad())
        {
            foreach (var (stored, key) in plan)
            {
                // Read at the module's dtype: a float32 value that overflows float16 would become infinite when copied.
                using var value = source.Read(stored, target[key].dtype);
                if (!WeightChecks.IsFinite(value)) nonFinite.Add(stored);
            }
        }
        if (nonFinite.Count > 0) throw InvalidWeightsException.NonFinite(SourceText(source), nonFinite);
        return report;
    }

    private static string SourceText(IStateDictSource source) => string.Join(", ", source.FilePaths.Select(p => $"'{p}'"));

    private static (List<(string Stored, string ModuleKey)> Plan, StateDictLoadReport Report) Plan(
        Dictionary<string, torch.Tensor> target, IStateDictSource source, StateDictLoadOptions options)
    {
        var plan = new List<(string Stored, string ModuleKey)>();
        var unexpected = new List<string>();
        var mismatched = new List<ShapeMismatch>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string stored in source.Names.OrderBy(n => n, StringComparer.Ordinal))
        {
            string? key = options.KeyMap is null ? stored : options.KeyMap(stored);
            if (key is null) continue;
            if (!target.TryGetValue(key, out var t))
            {
                unexpected.Add(stored);
                continue;
            }
            if (!seen.Add(key)) throw new InvalidWeightsException(source.FileOf(stored), stored, $"maps to module key '{key}', which another stored key already provides");
            long[] storedShape = source.ShapeOf(stored);
            if (!storedShape.SequenceEqual(t.shape))
            {
                mismatched.Add(new ShapeMismatch(key, t.shape, storedShape));
                continue;
            }
            plan.Add((stored, key));
        }
        var missing = target.Keys.Where(k => !seen.Contains(k) && !(options.OptionalModuleKey?.Invoke(k) ?? false)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var report = new StateDictLoadReport(plan.Select(p => p.ModuleKey).ToArray(), missing, unexpected, mismatched);
        if (mismatched.Count > 0 || (options.Strict && !report.IsExact)) throw InvalidWeightsException.Mismatch(SourceText(source), report);
        return (plan, report);
    }

    /// <summary>Loads the weights of a component folder (single or sharded safetensors, optional variant).</summary>
    public static StateDictLoadReport LoadComponent(torch.nn.Module module, string componentFolder, string? variant = null, StateDictLoadOptions? options = null)
    {
        using var source = StateDictSource.OpenComponent(componentFolder, variant);
        return Load(module, source, options);
    }
}
