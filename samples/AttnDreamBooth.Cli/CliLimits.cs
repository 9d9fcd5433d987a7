using System.CommandLine;
using System.Globalization;
using System.Reflection;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Cli;

/// <summary><c>--limit NAME=VALUE</c>: changes one <see cref="ResourceLimits"/> property for the command (repeatable), so
/// a trusted input above a default (a 12,000 × 12,000 photo, a huge config) can be read from the command line.</summary>
internal static class CliLimits
{
    /// <summary>The option, available on every command.</summary>
    internal static readonly Option<string[]> Option = new("--limit")
    {
        Description = "Change a resource limit for untrusted files as NAME=VALUE, NAME a ResourceLimits property "
                      + "(e.g. MaxImagePixels=200000000, MaxParameters=20000000000); repeatable. See docs/security.md.",
        Recursive = true,
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>The limits the command runs with: the defaults with every <c>--limit</c> applied.</summary>
    /// <exception cref="ArgumentException">An assignment is malformed, names no limit, or sets one below 1.</exception>
    public static ResourceLimits From(ParseResult parse) => Parse(parse.GetValue(Option) ?? []);

    /// <summary>The defaults with <paramref name="assignments"/> (<c>NAME=VALUE</c>) applied in order.</summary>
    /// <exception cref="ArgumentException">An assignment is malformed, names no limit, or sets one below 1.</exception>
    public static ResourceLimits Parse(IEnumerable<string> assignments)
    {
        var limits = ResourceLimits.Default;
        foreach (string assignment in assignments)
        {
            int eq = assignment.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? assignment : assignment[..eq].Trim();
            var property = typeof(ResourceLimits).GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (eq < 0 || property is null || !property.CanWrite)
                throw new ArgumentException($"--limit '{assignment}' is not NAME=VALUE with a ResourceLimits property as NAME ({string.Join(", ", Names)}).");
            string text = assignment[(eq + 1)..].Trim().Replace("_", "", StringComparison.Ordinal);
            if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long value)
                || (property.PropertyType == typeof(int) && value is > int.MaxValue or < int.MinValue))
                throw new ArgumentException($"--limit {property.Name}: '{assignment[(eq + 1)..]}' is not a whole number{(property.PropertyType == typeof(int) ? " up to 2,147,483,647" : "")}.");
            // A record copy with one init property set: the property validates the value (≥ 1) as in code.
            var copy = limits with { };
            try
            {
                property.SetValue(copy, property.PropertyType == typeof(int) ? (object)(int)value : value);
            }
            catch (TargetInvocationException e) when (e.InnerException is ArgumentOutOfRangeException inner)
            {
                throw new ArgumentException($"--limit {property.Name}={value}: {inner.Message}", inner);
            }
            limits = copy;
        }
        return limits;
    }

    private static IEnumerable<string> Names =>
        typeof(ResourceLimits).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name);
}
