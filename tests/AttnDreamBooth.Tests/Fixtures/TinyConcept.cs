using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Personalization;
using TorchSharp;
using RgbImage = AttnDreamBooth.Imaging.RgbImage;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>
/// A concept on the tiny SD 1.x fixture, trained once per test run with one step per stage (seeded) from the sample dog
/// photos and saved to a temporary folder; plus the tiny CLIP model. Shared by the evaluation and CLI tests.
/// </summary>
public sealed class TinyConcept : IAsyncLifetime
{
    public const string Token = "sks";
    public const string Category = "dog";

    private readonly TempDirectory _temp = new();

    public static string Photos => Path.Combine(TestPaths.RepoRoot, "samples", "data", "dog");
    public static string ClipFolder => Path.Combine(TestPaths.FixturesRoot, "tiny-clip-eval", "model");
    public static StagePlan Plan => StagePlan.Paper.WithSteps(1, 1, 1).WithBatchSize(1) with { CheckpointInterval = null };

    public string ConceptFolder => Path.Combine(_temp.Path, "concept");
    public string Scratch => _temp.Path;

    /// <summary>The base pipeline with the saved concept loaded back (as a user evaluates after training).</summary>
    public PersonalizationPipeline Pipeline { get; private set; } = null!;

    internal ClipModel Clip { get; private set; } = null!;

    public IReadOnlyList<RgbImage> Sources { get; private set; } = [];

    public async Task InitializeAsync()
    {
        using (var training = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1)
                   .WithStages(Plan)
                   .WithTrainingOptions(new TrainingOptions { Seed = 3, Data = new TrainingDataOptions { VariantsPerImage = 1, Images = new ConceptImageOptions { Resolution = 0 } } })
                   .Build())
        {
            var trained = await training.TrainAsync(Concept.FromFolder(Photos, Category, Token));
            await trained.SaveAsync(ConceptFolder);
        }
        Pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        await PersonalizedModel.LoadAsync(ConceptFolder, Pipeline);
        Clip = ClipTextTower.LoadModel(ClipFolder);
        Sources = Directory.GetFiles(Photos, "*.jpg").Order(StringComparer.Ordinal).Select(RgbImage.Load).ToArray();
    }

    public Task DisposeAsync()
    {
        Pipeline?.Dispose();
        Clip?.Dispose();
        _temp.Dispose();
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class TinyConceptCollection : ICollectionFixture<TinyConcept>
{
    public const string Name = "tiny concept";
}
