using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Tests.IO.SingleFile;

internal static class StateDictComparison
{
    /// <summary>The differences between two sources: names, shapes, dtypes and bytes (bit-exact).</summary>
    public static List<string> Differences(IStateDictSource expected, IStateDictSource actual, Func<string, bool>? ignore = null)
    {
        var problems = new List<string>();
        var e = expected.Names.Where(n => ignore?.Invoke(n) != true).ToHashSet(StringComparer.Ordinal);
        var a = actual.Names.Where(n => ignore?.Invoke(n) != true).ToHashSet(StringComparer.Ordinal);
        problems.AddRange(e.Except(a).Order(StringComparer.Ordinal).Select(n => $"missing {n}"));
        problems.AddRange(a.Except(e).Order(StringComparer.Ordinal).Select(n => $"unexpected {n}"));
        foreach (string name in e.Intersect(a).Order(StringComparer.Ordinal))
        {
            if (!expected.ShapeOf(name).SequenceEqual(actual.ShapeOf(name)))
            {
                problems.Add($"shape of {name}: [{string.Join(",", actual.ShapeOf(name))}] vs [{string.Join(",", expected.ShapeOf(name))}]");
                continue;
            }
            using var x = expected.Read(name);
            using var y = actual.Read(name);
            using var yc = y.contiguous();
            if (x.dtype != y.dtype || !x.bytes.SequenceEqual(yc.bytes)) problems.Add($"values of {name} differ");
        }
        return problems;
    }
}
