using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>The outcome of a <see cref="PersonalizationExperiment"/>: every image's scores, the per-method summary and the
/// files written.</summary>
/// <param name="OutputFolder">The output folder (full path).</param>
/// <param name="Scores">Every image's scores, cell by cell (concepts in order, methods in order, prompts, seeds).</param>
/// <param name="Summary">Mean ± 95 % confidence interval per method and stage over the non-tuning concepts.</param>
/// <param name="Cells">Each concept × method cell: whether it was reused and how long it took.</param>
/// <param name="Files">The report files written (full paths): results.csv, results.json, summary.md, scatter.png, the grids.</param>
public sealed record PersonalizationExperimentResult(
    string OutputFolder,
    IReadOnlyList<ExperimentImageScore> Scores,
    IReadOnlyList<ExperimentMethodSummary> Summary,
    IReadOnlyList<ExperimentCell> Cells,
    IReadOnlyList<string> Files);

/// <summary>One concept × method cell of an experiment.</summary>
/// <param name="Concept">The concept's name.</param>
/// <param name="Method">The method.</param>
/// <param name="Reused">Whether its results were taken from the output folder (nothing trained).</param>
/// <param name="Steps">The plan's optimizer steps.</param>
/// <param name="Training">Time spent training (including class images), as measured when the cell ran.</param>
/// <param name="Generation">Time spent generating and judging, as measured when the cell ran.</param>
/// <param name="SkippedPrompts">Indices of the prompts the concept skipped (backgrounds it lacks contrast with).</param>
public sealed record ExperimentCell(string Concept, PersonalizationMethod Method, bool Reused, int Steps, TimeSpan Training, TimeSpan Generation,
    IReadOnlyList<int> SkippedPrompts)
{
    /// <summary>How far each enabled stage moved the concept's embedding, relative to the row it started from:
    /// ‖e_end − e_start‖ / ‖e_initial‖, each stage starting where the one before ended (for a concept of several rows, the
    /// root mean over rows). 0 for a stage that does not train the embedding. Null for cells stored before it was measured.</summary>
    public IReadOnlyDictionary<TrainingStage, double>? EmbeddingMovement { get; init; }
}

/// <summary>A mean with the half-width of its 95 % confidence interval (Student's t over the samples, taken as
/// independent).</summary>
/// <param name="Mean">The mean (NaN without samples).</param>
/// <param name="HalfWidth">Half the width of the 95 % interval (NaN with fewer than two samples).</param>
/// <param name="Count">The number of samples.</param>
public sealed record ExperimentEstimate(double Mean, double HalfWidth, int Count)
{
    /// <summary>The estimate of <paramref name="values"/>.</summary>
    public static ExperimentEstimate Of(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var v = values.ToArray();
        if (v.Length == 0) return new ExperimentEstimate(double.NaN, double.NaN, 0);
        double mean = v.Average();
        if (v.Length < 2) return new ExperimentEstimate(mean, double.NaN, 1);
        double variance = v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1);
        return new ExperimentEstimate(mean, StudentT975(v.Length - 1) * Math.Sqrt(variance / v.Length), v.Length);
    }

    /// <summary>The 97.5 % quantile of Student's t with <paramref name="df"/> degrees of freedom (table to 30, then the
    /// Cornish–Fisher expansion around the normal quantile, within 1e-3).</summary>
    internal static double StudentT975(int df)
    {
        ReadOnlySpan<double> table =
        [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
            2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
        ];
        ArgumentOutOfRangeException.ThrowIfLessThan(df, 1);
        if (df <= table.Length) return table[df - 1];
        const double z = 1.959964;
        double n = df;
        return z + (z * z * z + z) / (4 * n) + (5 * Math.Pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
    }
}

/// <summary>The summary of one method (at one stage) over the non-tuning concepts × prompts × seeds.</summary>
/// <param name="Method">The method.</param>
/// <param name="AfterStage">The stage the images were generated after (null: the trained model).</param>
/// <param name="Identity">Identity score.</param>
/// <param name="Text">Text score.</param>
/// <param name="ConceptPresence">Share of images with the concept present (as 0/1 samples).</param>
/// <param name="HeatmapIoU">[V]-map IoU, over the images where a concept object was found.</param>
/// <param name="WordShares">[V]'s share of the words' attention, by layer grid height.</param>
public sealed record ExperimentMethodSummary(PersonalizationMethod Method, TrainingStage? AfterStage, ExperimentEstimate Identity, ExperimentEstimate Text,
    ExperimentEstimate ConceptPresence, ExperimentEstimate HeatmapIoU, IReadOnlyDictionary<int, ExperimentEstimate> WordShares)
{
    /// <summary>[V]-map IoU per layer resolution (by layer grid height), each over the images where a concept object was
    /// found and that resolution's IoU was measured (<see cref="ExperimentImageScore.HeatmapIoUByResolution"/>).</summary>
    public IReadOnlyDictionary<int, ExperimentEstimate> HeatmapIoUByResolution { get; init; } = new Dictionary<int, ExperimentEstimate>();
}
