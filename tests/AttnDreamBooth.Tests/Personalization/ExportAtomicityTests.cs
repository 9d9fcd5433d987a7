using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>Exports appear whole or not at all: an existing folder is refused or replaced only when complete, a
/// cancelled export leaves nothing behind, and the base model can never be the target.</summary>
[Collection(TrainedConceptsCollection.Name)]
public sealed class ExportAtomicityTests(TrainedConcepts concepts)
{
    private static string[] Leftovers(string parent) =>
        Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName).Where(n => n!.StartsWith('.')).ToArray()!;

    [Fact]
    public async Task ANonEmptyFolderIsRefusedUnlessOverwriteAndThenReplacedWhole()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        Directory.CreateDirectory(export);
        File.WriteAllText(Path.Combine(export, "notes.txt"), "mine");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using var _ = pipeline;
        var options = new ConceptExportOptions { Format = ConceptExportFormat.Embedding };
        var error = await Assert.ThrowsAsync<OutputFolderException>(() => model.ExportAsync(export, options));
        Assert.Contains("not empty", error.Message);
        Assert.Equal(["notes.txt"], Directory.GetFiles(export).Select(Path.GetFileName));

        await model.ExportAsync(export, options with { Overwrite = true });
        Assert.Equal(["README.txt", "attndreambooth_export.json", $"{model.Token}.safetensors"], Directory.GetFiles(export).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Empty(Leftovers(temp.Path));
    }

    [Fact]
    public async Task ACancelledExportLeavesNoFolderAndKeepsAPreviousOne()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string export = temp.File("export");
        var (pipeline, model) = await TrainedConcepts.LoadAsync(TestPaths.TinySd1, concepts.Sd1);
        using var _ = pipeline;

        using (var cts = new CancellationTokenSource())
        {
            var progress = new InlineProgress<ConceptExportProgress>(p => { if (p.Stage == "writing vae") cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.ExportAsync(export, null, progress, cts.Token));
        }
        Assert.False(Directory.Exists(export));
        Assert.Empty(Leftovers(temp.Path));

        await model.ExportAsync(export, new ConceptExportOptions { Format = ConceptExportFormat.Embedding });
        var before = Directory.GetFiles(export).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        using (var cts = new CancellationTokenSource())
        {
            var progress = new InlineProgress<ConceptExportProgress>(p => { if (p.Stage == "writing text_encoder") cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                model.ExportAsync(export, new ConceptExportOptions { Overwrite = true }, progress, cts.Token));
        }
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(export).Select(Path.GetFileName).Order());
        foreach (var (name, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(export, name)));
        Assert.Empty(Leftovers(temp.Path));
    }

    [Fact]
    public async Task TheBaseModelFolderIsNeverTheTarget()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string baseCopy = temp.File("base");
        TestPaths.CopyDirectory(TestPaths.TinySd1, baseCopy);
        using var pipeline = PersonalizationPipeline.FromPretrained(baseCopy).Build();
        var model = await PersonalizedModel.LoadAsync(concepts.Sd1, pipeline);
        var files = Directory.GetFiles(baseCopy, "*", SearchOption.AllDirectories).Order().ToArray();
        foreach (string target in new[] { baseCopy, temp.Path })
        {
            var error = await Assert.ThrowsAsync<OutputFolderException>(() => model.ExportAsync(target, new ConceptExportOptions { Overwrite = true }));
            Assert.Contains("holds the base model", error.Message);
        }
        Assert.Equal(files, Directory.GetFiles(baseCopy, "*", SearchOption.AllDirectories).Order());
    }

}
