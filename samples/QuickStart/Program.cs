// Quick start: dotnet run --project samples/QuickStart -- <sd-model-folder> <photo-folder> <category>
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

string model = args[0], photos = args[1], category = args[2];

using var pipeline = PersonalizationPipeline.FromPretrained(model)   // a diffusers folder, e.g. SD 2.1-base
    .OnDevice(args.Length > 3 ? args[3] : "cpu")
    .WithStages(StagePlan.Fast)
    .WithSeed(42)
    .Build();

var progress = new Progress<TrainingProgress>(p => Console.WriteLine($"stage {(int)p.Stage} step {p.Step}/{p.StageSteps} loss {p.Loss:F4}"));
var concept = await pipeline.TrainAsync(Concept.FromFolder(photos, category), progress);
await concept.SaveAsync("my-concept");

var images = await pipeline.GenerateAsync("a {} as a knight riding a horse",
    new GenerationOptions { Seed = 1, BatchSize = 2, HeatmapTokens = [concept.Token] });
foreach (var image in images)
{
    image.SavePng($"knight-{image.Seed}.png");
    File.WriteAllBytes($"knight-{image.Seed}-attention.png", image.EncodeHeatmapOverlayPng(concept.Token));
}
