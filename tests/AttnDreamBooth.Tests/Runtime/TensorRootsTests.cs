using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Tests.Personalization;
using AttnDreamBooth.Tests.Shapes.Pretraining;
using TorchSharp;

namespace AttnDreamBooth.Tests.Runtime;

/// <summary>
/// No tensor the library makes on its own threads (or while loading a model) is outside a dispose scope, so the garbage
/// collector can never finalize one under a native call (the SIGSEGV in <c>populate_operands</c> CI saw); and the rooting
/// scope does not grow from step to step, so it costs no memory over a long run. TorchSharp counts tensors created
/// outside any scope per thread; a dedicated thread starts at zero.
/// </summary>
public sealed class TensorRootsTests
{

    private static long CreatedOutsideScopes => DisposeScopeManager.Statistics.CreatedOutsideScopeCount;

    private static Task<T> OnFreshThread<T>(Func<T> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    [Fact]
    public async Task WhatTheWorkMakesIsHeldWhileItRunsAndHandedOnUndisposed()
    {
        var (result, insideOutside, heldInside, heldAfter, outsideWithoutRoot) = await OnFreshThread(() =>
        {
            long before = CreatedOutsideScopes;
            int held = 0;
            long outside = 0;
            var t = TensorRoots.Run(() =>
            {
                var temporary = torch.ones(4).mul(KeptScalars.Kept(3f));
                var disposed = torch.zeros(2);
                disposed.Dispose();
                held = TensorRoots.HeldOnThisThread;
                outside = CreatedOutsideScopes - before;
                return temporary.add(KeptScalars.Kept(1f), KeptScalars.One);
            });
            // The same expression without the root: TorchSharp counts it outside any scope.
            long plain = CreatedOutsideScopes;
            using (var x = torch.ones(1)) { }
            return (t, outside, held, TensorRoots.HeldOnThisThread, CreatedOutsideScopes - plain);
        });

        Assert.Equal(0, insideOutside);
        Assert.Equal(1, outsideWithoutRoot);
        // The temporary ones(4) and the product are held; the disposed tensor left the scope when disposed.
        Assert.Equal(2, heldInside);
        Assert.Equal(0, heldAfter);
        Assert.False(result.IsInvalid);
        Assert.Equal([4f, 4f, 4f, 4f], result.data<float>().ToArray());
        result.Dispose();
    }

    [Fact]
    public async Task ResultsLandInTheCallersScopeAndGoWithIt()
    {
        var (result, inOuter) = await OnFreshThread(() =>
        {
            using var outer = torch.NewDisposeScope();
            var r = TensorRoots.Run(() => torch.ones(3).mul(KeptScalars.Kept(2f)));
            return (r, outer.Contains(r));
        });
        Assert.True(inOuter);
        Assert.True(result.IsInvalid, "the caller's scope disposed the result with its other tensors");
    }

    [Fact]
    public async Task NestedRunsAndFailuresHandEverythingOn()
    {
        var (kept, heldInOuter, heldAfterFailure, outerContainsKept) = await OnFreshThread(() =>
        {
            using var outer = torch.NewDisposeScope();
            torch.Tensor? inner = null;
            int heldAfterInner = -1;
            TensorRoots.Run(() =>
            {
                inner = TensorRoots.Run(() => torch.ones(2));
                return heldAfterInner = TensorRoots.HeldOnThisThread;
            });
            torch.Tensor? lost = null;
            Assert.Throws<InvalidOperationException>(() => TensorRoots.Run<int>(() =>
            {
                lost = torch.ones(1);
                throw new InvalidOperationException("the work failed");
            }));
            return (inner!, heldAfterInner, TensorRoots.HeldOnThisThread, outer.Contains(inner!) && outer.Contains(lost!));
        });
        // The inner run handed its tensor to the outer run, which handed it (and the failed run's) to the caller's scope.
        Assert.Equal(1, heldInOuter);
        Assert.Equal(0, heldAfterFailure);
        Assert.True(outerContainsKept);
        Assert.True(kept.IsInvalid);
    }

    [Theory]
    [InlineData(PersonalizationMethod.AttnDreamBooth)]
    [InlineData(PersonalizationMethod.DreamBooth)] // prior preservation: class images generated on the training thread
    public async Task TrainingAndGenerationMakeNoTensorOutsideAScopeAndHoldNoMoreEachStep(PersonalizationMethod method)
    {
        using var temp = TestPaths.CreateTempDirectory();
        // A checkpoint after every step: the checkpoint writer is the code that left handles behind before.
        var plan = TinyMethods.Plan(method, stepsPerStage: 3);
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).WithStages(plan)
            .WithTrainingOptions(TinyPipeline.Options(temp.File("checkpoints"))).Build();
        var steps = new List<(TrainingStage Stage, long Outside, int Held)>();
        var model = await pipeline.TrainAsync(TinyPipeline.Dog(), new InlineProgress<TrainingProgress>(p => steps.Add((p.Stage, CreatedOutsideScopes, TensorRoots.HeldOnThisThread))));

        var sampling = new List<(long Outside, int Held)>();
        var generation = new GenerationOptions
        {
            Steps = 4, Width = 64, Height = 64, Seed = 3, HeatmapTokens = [model.Token],
            OnStep = _ => sampling.Add((CreatedOutsideScopes, TensorRoots.HeldOnThisThread)),
        };
        await pipeline.GenerateAsync($"a photo of {model.Token} dog", generation);

        Assert.Equal(plan.TotalSteps, steps.Count);
        Assert.All(steps, s => Assert.Equal(0, s.Outside));
        foreach (var stage in steps.GroupBy(s => s.Stage))
            Assert.All(stage, s => Assert.Equal(stage.First().Held, s.Held));
        Assert.Equal(4, sampling.Count);
        Assert.All(sampling, s => Assert.Equal(0, s.Outside));
        Assert.All(sampling, s => Assert.Equal(sampling[0].Held, s.Held));
    }

    [Fact]
    public async Task PretrainingMakesNoTensorOutsideAScopeAndHoldsNoMoreEachStep()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var recipe = ShapesPretrainerTests.TinyRecipe() with { VaeSteps = 4, UNetSteps = 4 };
        var trainer = new ShapesPretrainer(recipe, new ShapesWorldSource(ShapesWorld.Default, recipe.Seed, recipe.Architecture.ImageSize),
            new PretrainingOptions { CheckpointDirectory = temp.File("checkpoints"), TokenizerFolder = ShapesPretrainerTests.Tokenizer, CheckpointEverySteps = 1 });
        var steps = new List<(PretrainingPhase Phase, long Outside, int Held)>();
        await trainer.RunAsync(new InlineProgress<PretrainingProgress>(p => steps.Add((p.Phase, CreatedOutsideScopes, TensorRoots.HeldOnThisThread))));

        Assert.Equal(recipe.TotalSteps, steps.Count);
        Assert.All(steps, s => Assert.Equal(0, s.Outside));
        foreach (var phase in steps.GroupBy(s => s.Phase))
            Assert.All(phase, s => Assert.Equal(phase.First().Held, s.Held));
    }

    [Fact]
    public void TestCodeOnATestThreadIsHeldByTheThreadsRoot()
    {
        // TensorRootPerTestThreadAttribute ran before this test on this thread.
        long before = CreatedOutsideScopes;
        using var t = torch.ones(2).add(KeptScalars.Kept(1f), KeptScalars.One);
        Assert.Equal(before, CreatedOutsideScopes);
    }

    [Fact]
    public async Task TheNextTestOnAThreadHandsThePreviousTestsTensorsBackUndisposed()
    {
        var method = typeof(TensorRootsTests).GetMethod(nameof(TestCodeOnATestThreadIsHeldByTheThreadsRoot))!;
        var (alive, outside, detached) = await OnFreshThread(() =>
        {
            var root = new TensorRootPerTestThreadAttribute();
            root.Before(method);
            long outsideBefore = CreatedOutsideScopes;
            var t = torch.ones(3).mul(KeptScalars.Kept(2f));
            long outsideAfter = CreatedOutsideScopes;
            long detachedBefore = DisposeScopeManager.Statistics.DetachedFromScopeCount;
            root.Before(method);
            return (t, outsideAfter - outsideBefore, DisposeScopeManager.Statistics.DetachedFromScopeCount - detachedBefore);
        });
        Assert.Equal(0, outside);
        // ones(3) and the product.
        Assert.Equal(2, detached);
        Assert.False(alive.IsInvalid);
        alive.Dispose();
    }

    [Fact]
    public async Task LoadingAModelMakesNoTensorOutsideAScope()
    {
        var (folder, builder) = await OnFreshThread(() =>
        {
            long before = CreatedOutsideScopes;
            using (StableDiffusionPipeline.FromPretrained(TestPaths.TinySd1)) { }
            long folderLoad = CreatedOutsideScopes - before;
            before = CreatedOutsideScopes;
            using (PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build()) { }
            return (folderLoad, CreatedOutsideScopes - before);
        });
        Assert.Equal(0, folder);
        Assert.Equal(0, builder);
    }
}
