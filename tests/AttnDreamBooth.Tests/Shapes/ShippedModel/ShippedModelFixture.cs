using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;

namespace AttnDreamBooth.Tests.Shapes.ShippedModel;

/// <summary>
/// The shipped Shapes model and one short personalization of the tuning concept on it, as the demo runs it (its sampler
/// at the model's own guidance), run once for the behavioural tests (the trial is the slow part: training plus 2 × prompts generations).
/// </summary>
public sealed class ShippedModelFixture : IAsyncLifetime
{
    public static string ModelFolder => Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd");

    public static ShapesWorld World => ShapesWorld.Default;

    public static ConceptSpec Concept => ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "harlequin-star.json"), World);

    /// <summary>The official fast preset carried over to the Shapes model, as the demo runs it.</summary>
    public static StagePlan Plan => ShapesPersonalization.Plan(StagePlan.Fast) with { CheckpointInterval = null };

    private readonly TempDirectory _dir = new();

    public ConceptTrialResult Trial { get; private set; } = null!;

    private PersonalizationPipeline? _pipeline;

    public async Task InitializeAsync()
    {
        _pipeline = PersonalizationPipeline.FromPretrained(ModelFolder).WithStages(Plan).WithTrainingOptions(ShapesPersonalization.TrainingOptions(seed: 42)).Build();
        var prompts = ConceptPrompts.NewContexts(World, Concept);
        Trial = await ConceptTrial.RunAsync(_pipeline, World, Concept, _dir.File("photos"), prompts, seeds: 1, sampling: ShapesPersonalization.DemoGeneration);
    }

    public Task DisposeAsync()
    {
        _pipeline?.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }
}
