using System.Text.Json;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>A cell's results on disk (<see cref="PersonalizationExperiment.CellFile"/>), written after its images, so a
/// cell interrupted half-way has no file and runs again.</summary>
internal static class ExperimentCellFile
{
    private const string Format = "attndreambooth-experiment-cell";

    private sealed record Stored(string Format, int Version, string Fingerprint, ExperimentCell Cell, IReadOnlyList<double> LossHistory,
        IReadOnlyList<ExperimentImageScore> Scores);

    public static void Write(string folder, string fingerprint, ExperimentCell cell, IReadOnlyList<ExperimentImageScore> scores, IReadOnlyList<double> losses)
    {
        Directory.CreateDirectory(folder);
        var stored = new Stored(Format, 1, fingerprint, cell, losses, scores);
        AtomicFile.WriteAllText(Path.Combine(folder, PersonalizationExperiment.CellFile), JsonFiles.Serialize(stored, ExperimentJson.Options));
    }

    /// <summary>The stored scores and cell when the folder holds results with this fingerprint whose images all exist;
    /// null otherwise (missing, another fingerprint, unreadable).</summary>
    public static (ExperimentCell Cell, IReadOnlyList<ExperimentImageScore> Scores)? TryRead(string folder, string fingerprint)
    {
        string path = Path.Combine(folder, PersonalizationExperiment.CellFile);
        if (!File.Exists(path)) return null;
        Stored? stored;
        try
        {
            stored = JsonFiles.Deserialize<Stored>(File.ReadAllText(path), ExperimentJson.Options);
        }
        catch (JsonException)
        {
            return null;
        }
        if (stored is null || stored.Format != Format || stored.Fingerprint != fingerprint || stored.Scores is null || stored.Cell is null) return null;
        string root = Path.GetFullPath(Path.Combine(folder, "..", "..", ".."));
        if (stored.Scores.Any(s => !File.Exists(Path.Combine(root, s.Image)) || !File.Exists(Path.Combine(root, s.Heatmap)))) return null;
        return (stored.Cell, stored.Scores);
    }
}
