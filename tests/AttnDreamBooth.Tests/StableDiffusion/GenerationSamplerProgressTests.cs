using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Tests.StableDiffusion;

/// <summary>Generation with any sampler (by name, enum or scheduler config), its progress reports and the per-step callback.</summary>
public sealed class GenerationSamplerProgressTests
{
    private static GenerationOptions Small(int steps = 3) => new() { Steps = steps, Width = 64, Height = 48, BatchSize = 2, Seed = 4 };

    [Fact]
    public async Task ProgressReportsEveryStepInOrderAndTheResultDoesNotDependOnIt()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var plain = await pipeline.GenerateAsync("a dog", Small() with { Sampler = "heun" });

        var progress = new RecordingProgress<GenerationProgress>();
        var steps = new List<(int Step, int Total, double Timestep, long[] Shape)>();
        var options = Small() with
        {
            Sampler = "heun",
            OnStep = s => steps.Add((s.Step, s.TotalSteps, s.Timestep, s.Latents.shape)),
        };
        var observed = await pipeline.GenerateAsync("a dog", options, progress);

        // Heun evaluates the model 2N - 1 times.
        Assert.Equal(Enumerable.Range(1, 5), progress.Items.Select(p => p.Step));
        Assert.All(progress.Items, p => Assert.Equal((0, 2, 2, 5), (p.Image, p.ImagesInBatch, p.ImageCount, p.TotalSteps)));
        Assert.Equal(1.0, progress.Items[^1].Fraction);
        Assert.Equal(Enumerable.Range(1, 5), steps.Select(s => s.Step));
        int factor = pipeline.Components.Vae.DownsampleFactor;
        Assert.All(steps, s => Assert.Equal([2L, pipeline.Components.UNet.Config.InChannels, 48 / factor, 64 / factor], s.Shape));
        using var heun = HeunDiscreteScheduler.FromConfig(pipeline.Components.SchedulerConfig);
        heun.SetTimesteps(3);
        Assert.Equal(heun.ModelTimesteps, steps.Select(s => s.Timestep));
        for (int i = 0; i < plain.Count; i++) Assert.Equal(plain[i].Image.Pixels, observed[i].Image.Pixels);
    }

    [Fact]
    public async Task EverySamplerGeneratesAndTheChoiceMatters()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var seen = new Dictionary<string, byte[]>();
        foreach (string name in DiffusionSamplers.Names.Where(n => n != "ddpm"))
        {
            var images = await pipeline.GenerateAsync("a dog", Small(3) with { Sampler = name, BatchSize = 1 });
            var pixels = images[0].Image.Pixels.ToArray();
            Assert.DoesNotContain(seen, kv => kv.Value.SequenceEqual(pixels));
            seen[name] = pixels;
        }
        // A diffusers class name names the same sampler as its short name.
        var byClassName = await pipeline.GenerateAsync("a dog", Small(3) with { Sampler = "EulerAncestralDiscreteScheduler", BatchSize = 1 });
        Assert.Equal(seen["euler-a"], byClassName[0].Image.Pixels.ToArray());
    }

    [Fact]
    public async Task ASchedulerConfigChoosesTheSamplerItNames()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string file = dir.File("scheduler_config.json");
        // The model's own file, switched to UniPC order 3 with bh1 as a user would edit it.
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.TinySd1, "scheduler", "scheduler_config.json")))!.AsObject();
        json["_class_name"] = "UniPCMultistepScheduler";
        json["solver_order"] = 3;
        json["solver_type"] = "bh1";
        File.WriteAllText(file, json.ToJsonString());
        var config = SchedulerConfig.Load(file);
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var fromConfig = await pipeline.GenerateAsync("a dog", Small() with { SchedulerConfig = config });
        var byName = await pipeline.GenerateAsync("a dog", Small() with
        {
            Sampler = "unipc",
            SchedulerConfig = pipeline.Components.SchedulerConfig.With(new Dictionary<string, object?> { ["solver_order"] = 3, ["solver_type"] = "bh1" }),
        });
        var plainUniPC = await pipeline.GenerateAsync("a dog", Small() with { Sampler = "unipc" });
        Assert.Equal(byName[0].Image.Pixels, fromConfig[0].Image.Pixels);
        Assert.NotEqual(plainUniPC[0].Image.Pixels, fromConfig[0].Image.Pixels);
    }

    [Fact]
    public async Task UnknownSamplersAreRefusedBeforeAnythingRuns()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var error = await Assert.ThrowsAsync<SchedulerException>(() => pipeline.GenerateAsync("a dog", Small() with { Sampler = "euler-b" }));
        Assert.Contains("euler-a", error.Message, StringComparison.Ordinal);
        var other = SchedulerConfig.Parse("""{"_class_name": "LCMScheduler"}""", "lcm.json");
        var fromFile = await Assert.ThrowsAsync<SchedulerException>(() => pipeline.GenerateAsync("a dog", Small() with { SchedulerConfig = other }));
        Assert.Contains("lcm.json", fromFile.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DdimEtaIsHonoured()
    {
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var deterministic = await pipeline.GenerateAsync("a dog", Small() with { Sampler = "ddim" });
        var stochastic = await pipeline.GenerateAsync("a dog", Small() with { Sampler = "ddim", Eta = 1.0 });
        var again = await pipeline.GenerateAsync("a dog", Small() with { Sampler = "ddim", Eta = 1.0 });
        Assert.NotEqual(deterministic[0].Image.Pixels, stochastic[0].Image.Pixels);
        Assert.Equal(stochastic[0].Image.Pixels, again[0].Image.Pixels);
    }
}
