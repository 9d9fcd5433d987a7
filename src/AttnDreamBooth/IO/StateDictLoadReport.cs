namespace AttnDreamBooth.IO;

/// <summary>A tensor whose stored shape differs from the module's.</summary>
/// <param name="Name">The module's key.</param>
/// <param name="Expected">The module's shape.</param>
/// <param name="Actual">The stored shape.</param>
internal sealed record ShapeMismatch(string Name, long[] Expected, long[] Actual)
{
    /// <inheritdoc />
    public override string ToString() => $"{Name}: module [{string.Join(", ", Expected)}], file [{string.Join(", ", Actual)}]";
}

/// <summary>What loading a state dict into a module found.</summary>
/// <param name="Loaded">Keys copied into the module.</param>
/// <param name="Missing">Module keys the source does not hold.</param>
/// <param name="Unexpected">Source keys the module does not have.</param>
/// <param name="Mismatched">Keys present on both sides with different shapes.</param>
internal sealed record StateDictLoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<ShapeMismatch> Mismatched)
{
    /// <summary>True when every module key was loaded and nothing was left over.</summary>
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    /// <summary>A multi-line summary, listing at most <paramref name="maxPerKind"/> keys of each kind.</summary>
    public string Describe(int maxPerKind = 10)
    {
        var lines = new List<string> { $"{Loaded.Count} loaded, {Missing.Count} missing, {Unexpected.Count} unexpected, {Mismatched.Count} shape mismatches" };
        void Add(string title, IEnumerable<string> items, int count)
        {
            if (count == 0) return;
            lines.Add($"{title}:");
            lines.AddRange(items.Take(maxPerKind).Select(i => "  " + i));
            if (count > maxPerKind) lines.Add($"  … and {count - maxPerKind} more");
        }
        Add("missing", Missing, Missing.Count);
        Add("unexpected", Unexpected, Unexpected.Count);
        Add("shape mismatches", Mismatched.Select(m => m.ToString()), Mismatched.Count);
        return string.Join(Environment.NewLine, lines);
    }
}
