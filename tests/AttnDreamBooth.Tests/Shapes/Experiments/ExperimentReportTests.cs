using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;

namespace AttnDreamBooth.Tests.Shapes.Experiments;

/// <summary>The report's per-layer-resolution IoU on made-up rows: its columns, its means, and rows of cells stored
/// before it was measured, which stay empty and are named in the summary rather than counted as zero.</summary>
public sealed class ExperimentReportTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;

    private static ExperimentImageScore Row(long seed, double? iou, IReadOnlyDictionary<int, double?> byResolution, string concept = "star") =>
        new(concept, "star", false, PersonalizationMethod.TextualInversion, null, 0, "a photo of a {}", 0, seed, ConceptIdentity.None, 0.9, 1,
            iou, new Dictionary<int, double> { [16] = 0.25, [8] = 0.5 }, [], $"i{seed}.png", $"h{seed}.png")
        { HeatmapIoUByResolution = byResolution };

    [Fact]
    public void PerResolutionIoUIsAveragedOverTheRowsThatHaveItAndOlderRowsAreReportedAsMissing()
    {
        using var dir = TestPaths.CreateTempDirectory();
        ExperimentImageScore[] scores =
        [
            Row(0, 0.5, new Dictionary<int, double?> { [16] = 0.25, [8] = 0.75 }),
            Row(1, 0.25, new Dictionary<int, double?> { [16] = 0.5, [8] = 0.25 }),
            Row(2, null, new Dictionary<int, double?> { [16] = null, [8] = null }),   // no concept object found
            Row(3, 0.125, new Dictionary<int, double?>()),                              // a cell stored by an older run
        ];
        var methods = new[] { PersonalizationMethod.TextualInversion };
        var summary = ExperimentSummary.Summarize(scores, methods);
        var s = Assert.Single(summary);
        Assert.Equal([16, 8], s.HeatmapIoUByResolution.Keys);
        Assert.Equal((0.375, 2), (s.HeatmapIoUByResolution[16].Mean, s.HeatmapIoUByResolution[16].Count));
        Assert.Equal((0.5, 2), (s.HeatmapIoUByResolution[8].Mean, s.HeatmapIoUByResolution[8].Count));
        Assert.Equal(3, s.HeatmapIoU.Count);

        var options = new PersonalizationExperimentOptions
        {
            ModelFolder = dir.File("model"),
            Concepts = [],
            Prompts = [ConceptPrompts.Parse("a photo of a {V} on the beach", World)],
            OutputFolder = dir.Path,
            Methods = methods,
        };
        ExperimentReport.Write(dir.Path, options, "sha256:0", scores, summary, []);

        var csv = File.ReadAllLines(dir.File(PersonalizationExperiment.ResultsCsvFile)).Select(l => l.Split(',')).ToArray();
        int c16 = Array.IndexOf(csv[0], "v_map_iou_16"), c8 = Array.IndexOf(csv[0], "v_map_iou_8");
        Assert.Equal(Array.IndexOf(csv[0], "v_map_iou") + 1, c16);
        Assert.Equal(c16 + 1, c8);
        Assert.Equal(c8 + 1, Array.IndexOf(csv[0], "v_share_16"));
        Assert.Equal(["0.25", "0.5", "", ""], csv.Skip(1).Select(r => r[c16]));
        Assert.Equal(["0.75", "0.25", "", ""], csv.Skip(1).Select(r => r[c8]));

        string markdown = File.ReadAllText(dir.File(PersonalizationExperiment.SummaryFile));
        Assert.Contains("Per-resolution [V]-map IoU is missing for 1 of 4 images", markdown, StringComparison.Ordinal);
        string row = markdown.Split('\n').Single(l => l.StartsWith("| ti |", StringComparison.Ordinal) && l.Contains("0.375", StringComparison.Ordinal));
        var cells = row.Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal(("0.292 ± 0.474", "0.375 ± 1.588", "0.500 ± 3.176"), (cells[7], cells[8], cells[9]));
    }

    [Fact]
    public void PerConceptTableCarriesThePerResolutionColumns()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var concept = ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "galaxy-star.json"), World);
        Assert.False(concept.IsTuning);
        ExperimentImageScore[] scores =
        [
            Row(0, 0.5, new Dictionary<int, double?> { [16] = 0.25, [8] = 0.75 }, concept.Name),
            Row(1, 0.25, new Dictionary<int, double?> { [16] = 0.5, [8] = 0.25 }, concept.Name),
        ];
        // The concept's grid draws each row's image and heatmap.
        foreach (string file in scores.SelectMany(s => new[] { s.Image, s.Heatmap }))
            new AttnDreamBooth.Imaging.RgbImage(8, 8, new byte[8 * 8 * 3]).SavePng(dir.File(file));
        var methods = new[] { PersonalizationMethod.TextualInversion };
        var options = new PersonalizationExperimentOptions
        {
            ModelFolder = dir.File("model"),
            Concepts = [concept],
            Prompts = [ConceptPrompts.Parse("a photo of a {V} on the beach", World)],
            OutputFolder = dir.Path,
            Methods = methods,
        };
        ExperimentReport.Write(dir.Path, options, "sha256:0", scores, ExperimentSummary.Summarize(scores, methods), []);

        var lines = File.ReadAllText(dir.File(PersonalizationExperiment.SummaryFile)).Split('\n');
        int heading = Array.IndexOf(lines, "## Per concept");
        Assert.True(heading > 0);
        var header = lines[heading + 2].Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal(["concept", "method", "identity", "text", "concept present", "[V]-map IoU", "[V]-map IoU 16×16", "[V]-map IoU 8×8", "[V] share 16×16", "[V] share 8×8"],
            header[1..^1]);
        Assert.Equal(header.Length, lines[heading + 3].Split('|').Length);
        var row = lines[heading + 4].Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal((concept.Name, "ti"), (row[1], row[2]));
        Assert.Equal(("0.375 ± 1.588", "0.375 ± 1.588", "0.500 ± 3.176", "0.250 ± 0.000", "0.500 ± 0.000"), (row[6], row[7], row[8], row[9], row[10]));
    }
}
