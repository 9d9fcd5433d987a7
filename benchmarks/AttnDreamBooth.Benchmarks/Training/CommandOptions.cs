using System.Globalization;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>The "--name value" options of the hand-run measurement commands (not BenchmarkDotNet jobs).</summary>
internal sealed class CommandOptions
{
    private readonly Dictionary<string, string> _values;

    private CommandOptions(Dictionary<string, string> values) => _values = values;

    /// <summary>Reads <paramref name="args"/> as pairs of one of <paramref name="names"/> and its value; on anything else
    /// prints <paramref name="usage"/> and returns null (the command then exits with 2).</summary>
    public static CommandOptions? Parse(string[] args, string command, string usage, params string[] names)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (i + 1 < args.Length && names.Contains(args[i]))
            {
                values[args[i]] = args[++i];
                continue;
            }
            Console.Error.WriteLine($"Unknown argument '{args[i]}'. Usage: {command} {usage}");
            return null;
        }
        return new CommandOptions(values);
    }

    public string? Text(string name) => _values.GetValueOrDefault(name);

    public string[]? List(string name) => Text(name)?.Split(',');

    public int[]? Integers(string name) => List(name)?.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    public int? Integer(string name) => Text(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : null;
}
