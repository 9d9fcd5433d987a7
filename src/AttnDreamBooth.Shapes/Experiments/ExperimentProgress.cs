using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>What a <see cref="PersonalizationExperiment"/> is doing.</summary>
public enum ExperimentPhase
{
    /// <summary>A cell (concept × method) starts.</summary>
    CellStarted,

    /// <summary>A cell's results were already in the output folder with the same settings: reused, nothing trained.</summary>
    CellReused,

    /// <summary>Generating (or checking) the prior-preservation class images.</summary>
    ClassImages,

    /// <summary>Training; <see cref="ExperimentProgress.Training"/> holds the step.</summary>
    Training,

    /// <summary>Generating and judging the trained model's images; <see cref="ExperimentProgress.Completed"/> prompts of
    /// <see cref="ExperimentProgress.Total"/> done.</summary>
    Generating,

    /// <summary>A cell's results are written.</summary>
    CellFinished,

    /// <summary>Writing the tables, plot and grids.</summary>
    Reporting,
}

/// <summary>A progress report of <see cref="PersonalizationExperiment.RunAsync"/>.</summary>
/// <param name="Phase">What is happening.</param>
/// <param name="Cell">The cell's number (1-based; 0 while reporting).</param>
/// <param name="Cells">Number of cells (concepts × methods).</param>
/// <param name="Concept">The cell's concept name (empty while reporting).</param>
/// <param name="Method">The cell's method.</param>
/// <param name="Elapsed">Time since the experiment started.</param>
public sealed record ExperimentProgress(ExperimentPhase Phase, int Cell, int Cells, string Concept, PersonalizationMethod Method, TimeSpan Elapsed)
{
    /// <summary>The training step (phase <see cref="ExperimentPhase.Training"/>).</summary>
    public TrainingProgress? Training { get; init; }

    /// <summary>The class-image progress (phase <see cref="ExperimentPhase.ClassImages"/>).</summary>
    public ClassImageProgress? ClassImages { get; init; }

    /// <summary>Work items done in this phase (prompts while generating).</summary>
    public int Completed { get; init; }

    /// <summary>Work items of this phase.</summary>
    public int Total { get; init; }
}
