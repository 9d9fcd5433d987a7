using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>The public surface stays small: what a user composes (models, configs, processors, the tokenizer, samplers,
/// pipelines, options, results, exceptions), not the building blocks behind it. PublicAPI.Shipped.txt /
/// PublicAPI.Unshipped.txt list every public member; this test bounds the number of types.</summary>
public sealed class PublicSurfaceTests
{
    // What a user composes: models and configs, attention processors, the tokenizer, samplers, the pipelines, options,
    // progress and result records, and the exception types; exception types that no caller tells apart are one type.
    public const int MaxPublicTypes = 80;

    [Fact]
    public void PublicTypeCountStaysWithinTheBudget()
    {
        var exported = typeof(ModelConfigException).Assembly.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal).ToArray();
        Assert.True(exported.Length <= MaxPublicTypes, $"{exported.Length} public types (budget {MaxPublicTypes}):\n" + string.Join("\n", exported));
    }

    [Fact]
    public void EveryPublicTypeLivesInALayeredNamespace()
    {
        var stray = typeof(ModelConfigException).Assembly.GetExportedTypes().Where(t => LayeringTests.LayerOf(t.Namespace ?? "") < 0).Select(t => t.FullName).ToArray();
        Assert.Empty(stray);
    }

    [Fact]
    public void BuildingBlocksAreNotPublic()
    {
        var assembly = typeof(ModelConfigException).Assembly;
        var leaked = assembly.GetExportedTypes()
            .Where(t => t.Namespace == "AttnDreamBooth.Models.Blocks" || t.Name is "SeededRandom" or "RandomStreams" or "AttentionKernel"
                || t.Name.EndsWith("KeyMap", StringComparison.Ordinal) || t.Name.EndsWith("KeyMapping", StringComparison.Ordinal))
            .Select(t => t.FullName)
            .ToArray();
        Assert.Empty(leaked);
    }
}
