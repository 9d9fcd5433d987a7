using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>Means ± 95 % CI per method and stage over the non-tuning concepts' images.</summary>
internal static class ExperimentSummary
{
    public static IReadOnlyList<ExperimentMethodSummary> Summarize(IReadOnlyList<ExperimentImageScore> scores, IReadOnlyList<PersonalizationMethod> methods)
    {
        var result = new List<ExperimentMethodSummary>();
        foreach (var method in methods)
        {
            var rows = scores.Where(s => s.Method == method && !s.IsTuning).ToList();
            // Stages in training order, the trained model last.
            foreach (var stage in rows.Select(s => s.AfterStage).Distinct().OrderBy(s => s ?? (TrainingStage)int.MaxValue))
            {
                result.Add(Summarize(method, stage, rows.Where(s => s.AfterStage == stage).ToList()));
            }
        }
        return result;
    }

    public static ExperimentMethodSummary Summarize(PersonalizationMethod method, TrainingStage? stage, IReadOnlyList<ExperimentImageScore> rows)
    {
        var heights = rows.SelectMany(r => r.WordShares.Keys).Distinct().OrderDescending();
        var iouHeights = rows.SelectMany(r => r.HeatmapIoUByResolution.Keys).Distinct().OrderDescending();
        return new ExperimentMethodSummary(method, stage,
            ExperimentEstimate.Of(rows.Select(r => r.Identity.Score)),
            ExperimentEstimate.Of(rows.Select(r => r.Text)),
            ExperimentEstimate.Of(rows.Select(r => r.ConceptPresent ? 1.0 : 0.0)),
            ExperimentEstimate.Of(rows.Where(r => r.HeatmapIoU is not null).Select(r => r.HeatmapIoU!.Value)),
            heights.ToDictionary(h => h, h => ExperimentEstimate.Of(rows.Where(r => r.WordShares.ContainsKey(h)).Select(r => r.WordShares[h]))))
        {
            HeatmapIoUByResolution = iouHeights.ToDictionary(h => h, h => ExperimentEstimate.Of(rows
                .Select(r => r.HeatmapIoUByResolution.TryGetValue(h, out double? v) ? v : null).OfType<double>())),
        };
    }
}
