using AttnDreamBooth.Personalization;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Small, fast training set-ups on the tiny fixture pipelines.</summary>
internal static class TinyPipeline
{
    public static string DogPhotos => Path.Combine(TestPaths.RepoRoot, "samples", "data", "dog");

    /// <summary>The paper's numbers with a handful of steps and batch 1.</summary>
    public static StagePlan Plan(int s1 = 2, int s2 = 2, int s3 = 2) =>
        (StagePlan.Paper.WithBatchSize(1) with { CheckpointInterval = 1 }).WithStepsOrSkip([s1, s2, s3]);

    public static TrainingOptions Options(string? checkpoints = null, long seed = 7) => new()
    {
        Seed = seed,
        CheckpointDirectory = checkpoints,
        Data = new TrainingDataOptions { VariantsPerImage = 2, Images = new ConceptImageOptions { Resolution = 0 } },
    };

    public static PersonalizationPipeline Build(StagePlan plan, TrainingOptions options, string? model = null) =>
        PersonalizationPipeline.FromPretrained(model ?? TestPaths.TinySd1).WithStages(plan).WithTrainingOptions(options).Build();

    /// <summary>Two of the dog photos (fewer images: faster latent caching).</summary>
    public static Concept Dog(string token = Concept.DefaultToken) =>
        Concept.FromFiles(Directory.GetFiles(DogPhotos, "*.jpg").Order(StringComparer.Ordinal).Take(2), "dog", token);

    public static Dictionary<string, torch.Tensor> Snapshot(torch.nn.Module module) =>
        module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());

    public static bool BitEqual(torch.Tensor a, torch.Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.cpu().contiguous().bytes.SequenceEqual(b.cpu().contiguous().bytes);
}
