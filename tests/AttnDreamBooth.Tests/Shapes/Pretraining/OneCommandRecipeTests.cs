using AttnDreamBooth.Shapes.Pretraining;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>The recipe of the one-command, from-scratch run (docs/shapes-world.md, "One command from scratch"): the file
/// is the documented recipe, spelt as recipes are written.</summary>
public sealed class OneCommandRecipeTests
{
    [Fact]
    public void TheOneCommandRecipeIsTheShippedLineagesSettingsInOneUninterruptedRun()
    {
        // The shipped model's VAE phase (6,000 steps) and its U-Net settings (object weight 4 dilated by 1, zero terminal
        // SNR) from the first step, with the peak learning rate of a run from scratch and a weight average.
        var recipe = PretrainingRecipe.Default with
        {
            VaeSteps = 6000, UNetSteps = 5000, ObjectLossWeight = 4, ObjectLossDilation = 1,
            Scheduler = new ShapesSchedulerSettings { ZeroTerminalSnr = true }, UNetEmaDecay = 0.999,
        };
        string json = File.ReadAllText(Path.Combine(RecipeFolder, "one-command.json"));
        Assert.Equal(recipe.ToJson(), json.TrimEnd());
        var read = PretrainingRecipe.FromJson(json);
        Assert.Equal(recipe.Fingerprint(), read.Fingerprint());
        Assert.Equal((20261204L, 1e-3, 1e-3), (read.Seed, read.VaeLearningRate, read.UNetLearningRate));
    }

    [Fact]
    public void TheLowerPeakProbeDiffersFromTheOneCommandRecipeOnlyInTheUNetPhasesPeakLearningRate()
    {
        // docs/shapes-world.md, "The one-command recipe at a 3e-4 peak": the comparison is only fair if nothing else moved.
        var (oneCommand, json) = ReadBesideTheOneCommandRecipe("one-command-3e-4.json");
        var probe = PretrainingRecipe.FromJson(json);
        Assert.Equal((oneCommand with { UNetLearningRate = 3e-4 }).ToJson(), json.TrimEnd());
        Assert.NotEqual(oneCommand.Fingerprint(), probe.Fingerprint());
        Assert.Equal((20261204L, 1e-3, 3e-4), (probe.Seed, probe.VaeLearningRate, probe.UNetLearningRate));
    }

    [Fact]
    public void TheRestartRecipeIsTheOneCommandRecipeWithAWarmRestartAt3000StepsTo3e4()
    {
        // docs/shapes-world.md, "One command with a warm restart": the 1e-3 phase of the one-command run for 3,000
        // steps, then a fresh optimizer at the 3e-4 peak for the remaining 2,000; nothing else moved.
        var (oneCommand, json) = ReadBesideTheOneCommandRecipe("one-command-restart.json");
        var restart = PretrainingRecipe.FromJson(json);
        Assert.Equal((oneCommand with { UNetRestartStep = 3000, UNetRestartLearningRate = 3e-4 }).ToJson(), json.TrimEnd());
        Assert.Equal(5000, restart.UNetSteps);
        Assert.Equal(1e-4, restart.UNetLearningRateAt(2999), 9);
        Assert.Equal(3e-6, restart.UNetLearningRateAt(3000), 12);
        Assert.Equal(3e-4, restart.UNetLearningRateAt(3099), 12);
        Assert.Equal(3e-5, restart.UNetLearningRateAt(4999), 9);
    }

    [Fact]
    public void TheBatch16RecipeIsTheOneCommandRecipeWithHalfTheBatchAndEightThousandSteps()
    {
        // docs/shapes-world.md, "One command at batch 16": more updates in the same hour, nothing else moved (the
        // schedule's warm-up and cosine stretch over the longer run by themselves).
        var (oneCommand, json) = ReadBesideTheOneCommandRecipe("one-command-batch-16.json");
        var small = PretrainingRecipe.FromJson(json);
        Assert.Equal((oneCommand with { UNetBatchSize = 16, UNetSteps = 8000 }).ToJson(), json.TrimEnd());
        Assert.Equal(1e-3, small.UNetLearningRateAt(100), 12);
        Assert.Equal(1e-4, small.UNetLearningRateAt(7999), 9);
        Assert.True(small.UNetLearningRateAt(4000) > 5e-4);
    }

    [Fact]
    public void TheTextEncoderRecipeIsTheOneCommandRecipeWithTheTextEncoderAtThreeTenthsOfTheRate()
    {
        // docs/shapes-world.md, "Where the one-command runs lose the position word": the U-Net at the 1e-3 peak that
        // learnt shape best, the text encoder at the 3e-4 under which the position words stayed apart.
        var (oneCommand, json) = ReadBesideTheOneCommandRecipe("one-command-text-encoder-0.3.json");
        var recipe = PretrainingRecipe.FromJson(json);
        Assert.Equal((oneCommand with { TextEncoderLearningRateScale = 0.3 }).ToJson(), json.TrimEnd());
        Assert.Equal(3e-4, recipe.UNetLearningRate * recipe.TextEncoderLearningRateScale!.Value, 12);
    }

    private static string RecipeFolder => Path.Combine(TestPaths.RepoRoot, "samples", "shapes-recipes");

    /// <summary>The one-command recipe and the text of a variant of it in the same folder.</summary>
    private static (PretrainingRecipe OneCommand, string VariantJson) ReadBesideTheOneCommandRecipe(string variant) =>
        (PretrainingRecipe.FromJson(File.ReadAllText(Path.Combine(RecipeFolder, "one-command.json"))), File.ReadAllText(Path.Combine(RecipeFolder, variant)));
}
