namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// The generated correspondence between one component's original keys (without the component prefix) and its diffusers
/// keys: module prefix rules (a module's parameters keep their leaf names) and exact-key rules (bare parameters and
/// fused tensors). Lookups try the longest matching prefix first, so nested rules never shadow each other.
/// </summary>
internal sealed class ComponentKeyMap
{
    private enum RuleKind
    {
        /// <summary>A leaf module: only <c>weight</c> and <c>bias</c>.</summary>
        Parameters,

        /// <summary>A module whose internals have identical names in both layouts (SpatialTransformer, CLIP layer).</summary>
        Subtree,

        /// <summary>A 1x1 conv in the original and a Linear in diffusers: the weight is reshaped, the bias copied.</summary>
        ConvToLinear,
    }

    private sealed record PrefixRule(string Original, string Diffusers, RuleKind Kind);

    private sealed record ExactRule(string Original, string[] Diffusers, SingleFileOp Op);

    private readonly Dictionary<string, PrefixRule> _byOriginal = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PrefixRule> _byDiffusers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ExactRule> _exactByOriginal = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (ExactRule Rule, int Part)> _exactByDiffusers = new(StringComparer.Ordinal);
    private readonly List<string> _modules = [];

    public ComponentKeyMap(string component) => Component = component;

    public string Component { get; }

    /// <summary>Original module prefixes (or exact keys) of which every file of this architecture holds at least one key.</summary>
    public IReadOnlyList<string> RequiredModules => _modules;

    public ComponentKeyMap Parameters(string original, string diffusers, bool required = true) => AddPrefix(original, diffusers, RuleKind.Parameters, required);

    public ComponentKeyMap Subtree(string original, string diffusers) => AddPrefix(original, diffusers, RuleKind.Subtree, true);

    public ComponentKeyMap ConvToLinear(string original, string diffusers) => AddPrefix(original, diffusers, RuleKind.ConvToLinear, true);

    public ComponentKeyMap Exact(string original, string[] diffusers, SingleFileOp op)
    {
        var rule = new ExactRule(original, diffusers, op);
        if (!_exactByOriginal.TryAdd(original, rule)) throw new InvalidOperationException($"Duplicate original key rule '{original}'.");
        for (int i = 0; i < diffusers.Length; i++)
        {
            if (!_exactByDiffusers.TryAdd(diffusers[i], (rule, i))) throw new InvalidOperationException($"Duplicate diffusers key rule '{diffusers[i]}'.");
        }
        _modules.Add(original);
        return this;
    }

    /// <summary>Marks a module prefix as required without adding a rule (groups of optional leaf rules).</summary>
    public ComponentKeyMap RequireModule(string originalPrefix)
    {
        _modules.Add(originalPrefix);
        return this;
    }

    private ComponentKeyMap AddPrefix(string original, string diffusers, RuleKind kind, bool required)
    {
        if (!original.EndsWith('.') || !diffusers.EndsWith('.')) throw new ArgumentException("Prefixes end with a dot.");
        var rule = new PrefixRule(original, diffusers, kind);
        if (!_byOriginal.TryAdd(original, rule)) throw new InvalidOperationException($"Duplicate original prefix rule '{original}'.");
        if (!_byDiffusers.TryAdd(diffusers, rule)) throw new InvalidOperationException($"Duplicate diffusers prefix rule '{diffusers}'.");
        if (required) _modules.Add(original);
        return this;
    }

    /// <summary>The diffusers key(s) and op of an original key (component prefix removed), or null when no rule covers it.</summary>
    public (string[] Keys, SingleFileOp Op)? ToDiffusers(string key)
    {
        if (_exactByOriginal.TryGetValue(key, out var exact)) return (exact.Diffusers, exact.Op);
        if (FindPrefix(_byOriginal, key) is not { } rule) return null;
        string leaf = key[rule.Original.Length..];
        return Translate(rule, leaf) is { } op ? ([rule.Diffusers + leaf], op) : null;
    }

    /// <summary>The original key (component prefix removed), op and part index (q/k/v) of a diffusers key, or null.</summary>
    public (string Key, SingleFileOp Op, int Part, int Parts)? ToOriginal(string diffusersKey)
    {
        if (_exactByDiffusers.TryGetValue(diffusersKey, out var exact)) return (exact.Rule.Original, exact.Rule.Op, exact.Part, exact.Rule.Diffusers.Length);
        if (FindPrefix(_byDiffusers, diffusersKey) is not { } rule) return null;
        string leaf = diffusersKey[rule.Diffusers.Length..];
        return Translate(rule, leaf) is { } op ? (rule.Original + leaf, op, 0, 1) : null;
    }

    private static SingleFileOp? Translate(PrefixRule rule, string leaf) => rule.Kind switch
    {
        RuleKind.Subtree => leaf.Length > 0 ? SingleFileOp.Copy : null,
        RuleKind.Parameters => leaf is "weight" or "bias" ? SingleFileOp.Copy : null,
        RuleKind.ConvToLinear => leaf switch { "weight" => SingleFileOp.Reshape, "bias" => SingleFileOp.Copy, _ => null },
        _ => null,
    };

    private static PrefixRule? FindPrefix(Dictionary<string, PrefixRule> rules, string key)
    {
        for (int end = key.LastIndexOf('.'); end > 0; end = key.LastIndexOf('.', end - 1))
        {
            if (rules.TryGetValue(key[..(end + 1)], out var rule)) return rule;
        }
        return null;
    }
}
