using AttnDreamBooth.IO;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Shapes.Pretraining;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>
/// <see cref="ShapesSchedulerSettings.ZeroTerminalSnr"/>: the recipe key, the sampler the exported model names, and the
/// schedule the U-Net phase adds its noise with.
/// </summary>
[Collection(PretrainingCollection.Name)]
public sealed class ZeroTerminalSnrRecipeTests
{
    private static readonly ShapesSchedulerSettings ZeroSnr = new() { ZeroTerminalSnr = true };

    [Fact]
    public void TheKeyIsLeftOutWhenFalseAndNeedsVPrediction()
    {
        Assert.DoesNotContain("zero_terminal_snr", PretrainingRecipe.Default.ToJson());
        var recipe = PretrainingRecipe.Default with { Scheduler = ZeroSnr };
        Assert.Contains("\"zero_terminal_snr\": true", recipe.ToJson());
        Assert.True(PretrainingRecipe.FromJson(recipe.ToJson()).Scheduler.ZeroTerminalSnr);
        Assert.NotEqual(PretrainingRecipe.Default.Fingerprint(), recipe.Fingerprint());
        recipe.Validate();
        var epsilon = recipe with { Scheduler = ZeroSnr with { PredictionType = PredictionType.Epsilon } };
        Assert.Contains("zero_terminal_snr", Assert.Throws<ArgumentException>(epsilon.Validate).Message);
    }

    [Fact]
    public void TheSampleRecipeIsTheObjectWeightedOneWithZeroTerminalSnr()
    {
        string json = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes", "object-weight-4-zero-snr.json"));
        var expected = PretrainingRecipe.Default with { VaeSteps = 0, UNetSteps = 4000, ObjectLossWeight = 4, Scheduler = ZeroSnr };
        Assert.Equal(expected.ToJson(), json.TrimEnd());
    }

    [Fact]
    public void TheModelSamplesWithDdimFromTheZeroSignalTimestepOfTheRescaledSchedule()
    {
        var config = SchedulerConfig.Parse(DiffusersConfigFiles.Scheduler(ZeroSnr), "scheduler_config.json");
        Assert.Equal(SchedulerClass.Ddim, config.Class);
        Assert.Equal(PredictionType.VPrediction, config.PredictionType);
        Assert.Contains("\"DDIMScheduler\"", DiffusersConfigFiles.ModelIndex(ZeroSnr));
        Assert.Contains("\"DPMSolverMultistepScheduler\"", DiffusersConfigFiles.ModelIndex(new ShapesSchedulerSettings()));

        using var ddim = DdimScheduler.FromConfig(config);
        ddim.SetTimesteps(50);
        Assert.Equal(999, ddim.Timesteps[0]);
        Assert.True(ddim.Schedule.AlphasCumprod[999] < 1e-6f);
        using var training = DdpmScheduler.ForTraining(config);
        Assert.Equal(ddim.Schedule.AlphasCumprod, training.Schedule.AlphasCumprod);
        using var plain = DdpmScheduler.ForTraining(SchedulerConfig.Parse(DiffusersConfigFiles.Scheduler(new ShapesSchedulerSettings()), "plain.json"));
        Assert.True(plain.Schedule.AlphasCumprod[999] > 4e-3f, "SD's schedule keeps some signal at its last timestep");
    }

    [Fact]
    public async Task TheUNetPhaseAddsNoiseWithTheRescaledScheduleAndTheExportNamesDdim()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var plain = ShapesPretrainerTests.TinyRecipe(seed: 5);
        var rescaled = plain with { Scheduler = ZeroSnr };
        var a = await ShapesPretrainerTests.Trainer(plain, temp.File("plain")).RunAsync();
        var b = await ShapesPretrainerTests.Trainer(rescaled, temp.File("rescaled")).RunAsync();
        Assert.Equal(a.State.VaeLosses, b.State.VaeLosses);
        // Same images, noise and timesteps, other signal levels: the first U-Net loss differs before any update.
        Assert.NotEqual(a.State.UNetLosses[0], b.State.UNetLosses[0]);
        Assert.All(b.State.UNetLosses, l => Assert.True(double.IsFinite(l) && l > 0));

        string model = temp.File("model");
        ShapesModelExporter.Export(b.CheckpointPath, ShapesPretrainerTests.Tokenizer, model);
        var exported = SchedulerConfig.Load(Path.Combine(model, "scheduler", "scheduler_config.json"));
        Assert.Equal(SchedulerClass.Ddim, exported.Class);
        Assert.True(exported.RescaleBetasZeroSnr);
        Assert.Equal(TimestepSpacing.Trailing, exported.TimestepSpacing);
    }
}
