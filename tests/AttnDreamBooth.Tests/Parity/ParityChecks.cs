namespace AttnDreamBooth.Tests.Parity;

/// <summary>Every <see cref="IParityCheck"/> in the test assembly.</summary>
public static class ParityChecks
{
    private static readonly Lazy<IReadOnlyList<IParityCheck>> Instances = new(() =>
        typeof(IParityCheck).Assembly.GetTypes()
            .Where(t => typeof(IParityCheck).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IParityCheck)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToArray());

    public static IReadOnlyList<IParityCheck> All => Instances.Value;

    public static IParityCheck Get(string name) => All.FirstOrDefault(c => c.Name == name) ?? throw new KeyNotFoundException($"No parity check '{name}'.");

    public static readonly IReadOnlySet<string> KnownKinds = new HashSet<string> { "sd_pipeline", "clip_eval", "sd_lora", "scheduler_chain" };
}
