using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Concepts trained once for every export test: on the tiny SD 1.x and SD 2.x models with all three stages (so
/// the U-Net's weights, biases and norms differ from the base), and an existing-token concept ("sks", stage 1 only).</summary>
public sealed class TrainedConcepts : IDisposable
{
    private readonly TempDirectory _dir = TestPaths.CreateTempDirectory();

    public TrainedConcepts()
    {
        Train(TestPaths.TinySd1, TinyPipeline.Plan(1, 1, 1), Concept.DefaultToken, Sd1);
        Train(TestPaths.TinySd2, TinyPipeline.Plan(1, 1, 1), Concept.DefaultToken, Sd2);
        Train(TestPaths.TinySd1, TinyPipeline.Plan(1, 0, 0), "sks", Sd1Existing);
    }

    public string Sd1 => _dir.File("sd1");

    public string Sd2 => _dir.File("sd2");

    public string Sd1Existing => _dir.File("sd1-sks");

    /// <summary>A fresh pipeline of <paramref name="baseModel"/> with the saved concept loaded.</summary>
    public static async Task<(PersonalizationPipeline Pipeline, PersonalizedModel Model)> LoadAsync(string baseModel, string concept)
    {
        var pipeline = PersonalizationPipeline.FromPretrained(baseModel).Build();
        try
        {
            return (pipeline, await PersonalizedModel.LoadAsync(concept, pipeline));
        }
        catch
        {
            pipeline.Dispose();
            throw;
        }
    }

    /// <summary>The generation every round trip compares: a short seeded run at the model's resolution.</summary>
    public static GenerationOptions Options => new() { Steps = 3, Seed = 11 };

    public static async Task<byte[]> RenderAsync(PersonalizationPipeline pipeline, string prompt) =>
        (await pipeline.GenerateAsync(prompt, Options))[0].Image.Pixels;

    public void Dispose() => _dir.Dispose();

    private static void Train(string model, StagePlan plan, string token, string folder)
    {
        using var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options(), model);
        var trained = pipeline.TrainAsync(TinyPipeline.Dog(token)).GetAwaiter().GetResult();
        trained.SaveAsync(folder).GetAwaiter().GetResult();
    }
}

[CollectionDefinition(Name)]
public sealed class TrainedConceptsCollection : ICollectionFixture<TrainedConcepts>
{
    public const string Name = "Trained concepts for export";
}
