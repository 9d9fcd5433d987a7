using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Tests.IO.SingleFile;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/single-file": the case's original-layout <c>single-file/model.safetensors</c>, opened against the
/// pipeline's configs, gives every UNet, VAE and text-encoder tensor of <c>pipeline/</c> bit for bit, with nothing
/// left over. It claims no reference tensors: the networks that would recompute the references from these tensors
/// are checked on the pipeline folder, and identical tensors give identical outputs.
/// </summary>
public sealed class SingleFileCheck : IParityCheck
{
    public string Name => "single-file";
    public IReadOnlyCollection<string> Components => [];

    public static string FileOf(FixtureCase fixture) => Path.Combine(fixture.Folder, "single-file", "model.safetensors");

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && Directory.Exists(fixture.PipelineFolder) && File.Exists(FileOf(fixture));

    public IEnumerable<string> Claims(FixtureCase fixture) => [];

    public void Run(ParityContext context)
    {
        string pipeline = context.Case.PipelineFolder;
        using var checkpoint = SingleFileCheckpoint.Open(FileOf(context.Case), SingleFileArchitecture.FromFolder(pipeline));
        Assert.Equal(SingleFileComponents.All, checkpoint.Components);
        if (context.Case.Manifest.Root.TryGetProperty("single_file", out var facts)
            && facts.TryGetProperty("text_encoder_layout", out var layout) && layout.TryGetProperty("prefix", out var prefix))
        {
            Assert.Equal(prefix.GetString(), SingleFileComponents.OriginalPrefix(SingleFileComponents.TextEncoder, checkpoint.Family));
        }
        var problems = new List<string>();
        foreach (string component in SingleFileComponents.All)
        {
            using var expected = StateDictSource.OpenComponent(Path.Combine(pipeline, component));
            var actual = checkpoint.OpenComponent(component);
            problems.AddRange(StateDictComparison.Differences(expected, actual).Select(p => $"{component}: {p}"));
        }
        if (problems.Count > 0) throw new XunitException($"{context.Case.Name}: {problems.Count} differences:\n  {string.Join("\n  ", problems.Take(20))}");
        // Only keys the layout documents as SD-unused may be skipped.
        Assert.All(checkpoint.SkippedKeys, k => Assert.Equal(SingleFileKeyKind.Ignored, k.Kind));
    }
}
