using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>The public surface stays small: what a user composes (models, configs, processors, the tokenizer, samplers,
/// pipelines, options, results, exceptions), not the building blocks behind it. PublicAPI.Shipped.txt /
/// PublicAPI.Unshipped.txt list every public member; this test bounds the number of types.</summary>
public sealed class PublicSurfaceTests
{
    // What a user composes: models and configs, attention processors, the tokenizer, samplers, the pipelines, options,
    // progress and result records, and the exception types; exception types that no caller tells apart are one type.
    // Eleven more are the blocks of a training loop of one's own, which the Shapes package composes as any user would
    // (docs/custom-training.md): the training noise scheduler, the VAE posterior, AdamW and its state format, checkpoint
    // folders, safetensors and atomic writes, the JSON spelling, the method names, and the two TorchSharp lifetime guards.
    // Three more adapt a VAE decoder to a concept's photos (PersonalizedModel.AdaptDecoderAsync): its options, its progress
    // record and the loop on any AutoencoderKL, which the Shapes package composes to measure what the adaptation does.
    public const int MaxPublicTypes = 94;

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
    public void TheShapesPackageBuildsOnThePublicApiAlone()
    {
        // A separate package compiled against the core's internals breaks when either is updated alone.
        var friends = typeof(ModelConfigException).Assembly.GetCustomAttributes(typeof(System.Runtime.CompilerServices.InternalsVisibleToAttribute), false)
            .Cast<System.Runtime.CompilerServices.InternalsVisibleToAttribute>().Select(a => a.AssemblyName).ToArray();
        Assert.Contains("AttnDreamBooth.Tests", friends);
        Assert.DoesNotContain("AttnDreamBooth.Shapes", friends);
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
