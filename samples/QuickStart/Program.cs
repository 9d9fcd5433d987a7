// Quick start.
//   dotnet run --project samples/QuickStart -c Release                       the shipped Shapes model and concept (CPU, about a minute)
//   dotnet run --project samples/QuickStart -c Release -- <sd-model-folder> <photo-folder> <category> [device]
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;
using AttnDreamBooth.StableDiffusion;

string model, photos, category, prompt;
StagePlan plan;
TrainingOptions training;
GenerationOptions generation;
if (args.Length == 0)
{
    // The Shapes world: a tiny Stable-Diffusion-layout model this library pretrained, and five rendered photos of a
    // star pattern it has never seen.
    string root = FindRepositoryRoot();
    model = Path.Combine(root, "samples", "models", "shapes-sd");
    var world = ShapesWorld.Default;
    var star = ConceptSpec.Load(Path.Combine(root, "samples", "concepts", "harlequin-star.json"), world);
    photos = Path.GetFullPath("quickstart-photos");
    ConceptTrial.WritePhotos(world, star, photos);
    category = star.Category.Name;
    prompt = "a photo of a {} on the right on the beach";
    plan = ShapesPersonalization.Plan(StagePlan.Fast);
    training = ShapesPersonalization.TrainingOptions(seed: 42);
    generation = ShapesPersonalization.DemoGeneration;
}
else if (args.Length >= 3)
{
    (model, photos, category) = (args[0], args[1], args[2]);   // e.g. a diffusers folder of SD 2.1-base
    prompt = "a {} as a knight riding a horse";
    plan = StagePlan.Fast;
    training = new TrainingOptions { Seed = 42 };
    generation = new GenerationOptions();
}
else
{
    Console.Error.WriteLine("usage: QuickStart [<sd-model-folder> <photo-folder> <category> [device]]");
    return 2;
}

using var pipeline = PersonalizationPipeline.FromPretrained(model)
    .OnDevice(args.Length > 3 ? args[3] : "cpu")
    .WithStages(plan)
    .WithTrainingOptions(training)
    .Build();

var progress = new Progress<TrainingProgress>(p => Console.WriteLine($"stage {(int)p.Stage} step {p.Step}/{p.StageSteps} loss {p.Loss:F4}"));
var concept = await pipeline.TrainAsync(Concept.FromFolder(photos, category), progress);
await concept.SaveAsync("my-concept");

var images = await pipeline.GenerateAsync(prompt, generation with { Seed = 1, BatchSize = 2, HeatmapTokens = [concept.Token] });
foreach (var image in images)
{
    image.SavePng($"quickstart-{image.Seed}.png");
    File.WriteAllBytes($"quickstart-{image.Seed}-attention.png", image.EncodeHeatmapOverlayPng(concept.Token));
    Console.WriteLine($"wrote quickstart-{image.Seed}.png and its [V] attention map");
}
return 0;

static string FindRepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
    }
    throw new DirectoryNotFoundException("Run the quick start from inside the repository (it looks for AttnDreamBooth.sln above its binaries).");
}
