namespace AttnDreamBooth.Personalization;

/// <summary>Names, groups and parsing of <see cref="PersonalizationMethod"/> (for command lines, file names and tables).</summary>
public static class PersonalizationMethods
{
    private static readonly (PersonalizationMethod Method, string Name)[] Names =
    [
        (PersonalizationMethod.AttnDreamBooth, "attndreambooth"),
        (PersonalizationMethod.AttnDreamBoothFast, "attndreambooth-fast"),
        (PersonalizationMethod.TextualInversion, "ti"),
        (PersonalizationMethod.DreamBooth, "dreambooth"),
        (PersonalizationMethod.TextualInversionDreamBooth, "ti-db"),
        (PersonalizationMethod.WithoutEmbeddingStage, "no-stage1"),
        (PersonalizationMethod.WithoutCrossAttentionStage, "no-stage2"),
        (PersonalizationMethod.WithoutUNetStage, "no-stage3"),
        (PersonalizationMethod.WithoutRegularization, "no-regularization"),
    ];

    /// <summary>Every method, in declaration order.</summary>
    public static IReadOnlyList<PersonalizationMethod> All { get; } = Names.Select(n => n.Method).ToArray();

    /// <summary>The methods AttnDreamBooth is compared with: Textual Inversion, DreamBooth and TI+DB.</summary>
    public static IReadOnlyList<PersonalizationMethod> Baselines { get; } =
        [PersonalizationMethod.TextualInversion, PersonalizationMethod.DreamBooth, PersonalizationMethod.TextualInversionDreamBooth];

    /// <summary>AttnDreamBooth without one of its parts: stage 1, stage 2, stage 3, or the attention regularization.</summary>
    public static IReadOnlyList<PersonalizationMethod> Ablations { get; } =
    [
        PersonalizationMethod.WithoutEmbeddingStage, PersonalizationMethod.WithoutCrossAttentionStage,
        PersonalizationMethod.WithoutUNetStage, PersonalizationMethod.WithoutRegularization,
    ];

    /// <summary>The method's short lower-case name: "attndreambooth", "attndreambooth-fast", "ti", "dreambooth", "ti-db",
    /// "no-stage1", "no-stage2", "no-stage3" or "no-regularization".</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined method.</exception>
    public static string Name(this PersonalizationMethod method)
    {
        foreach (var (m, name) in Names)
        {
            if (m == method) return name;
        }
        throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown personalization method.");
    }

    /// <summary>The method named <paramref name="name"/> (its <see cref="Name"/> or its enum name, case-insensitive).</summary>
    /// <exception cref="ArgumentException">No method has that name; the message lists the valid ones.</exception>
    public static PersonalizationMethod Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(name, out var method)
            ? method
            : throw new ArgumentException($"Unknown personalization method '{name}'; expected one of: {string.Join(", ", Names.Select(n => n.Name))}.", nameof(name));
    }

    /// <summary>Like <see cref="Parse"/>, without throwing.</summary>
    public static bool TryParse(string? name, out PersonalizationMethod method)
    {
        string trimmed = name?.Trim() ?? "";
        foreach (var (m, n) in Names)
        {
            if (string.Equals(n, trimmed, StringComparison.OrdinalIgnoreCase) || string.Equals(m.ToString(), trimmed, StringComparison.OrdinalIgnoreCase))
            {
                method = m;
                return true;
            }
        }
        method = default;
        return false;
    }

    /// <summary>The methods in a comma-separated list of names (e.g. "ti,dreambooth,attndreambooth"), in the given order
    /// without duplicates; "all" stands for <see cref="All"/>.</summary>
    /// <exception cref="ArgumentException">An unknown name, or an empty list.</exception>
    public static IReadOnlyList<PersonalizationMethod> ParseList(string names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var result = new List<PersonalizationMethod>();
        foreach (string part in names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var add = string.Equals(part, "all", StringComparison.OrdinalIgnoreCase) ? All : [Parse(part)];
            foreach (var m in add)
            {
                if (!result.Contains(m)) result.Add(m);
            }
        }
        if (result.Count == 0) throw new ArgumentException("The method list is empty.", nameof(names));
        return result;
    }
}
