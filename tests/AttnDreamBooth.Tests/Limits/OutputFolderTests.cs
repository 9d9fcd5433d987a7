using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Tests.Limits;

/// <summary>A run owns its folders: nothing of another run is overwritten or pruned, a failed replacement leaves exactly
/// one complete version, and stale temporaries are recovered or removed at the next start. (In-process and small: no
/// test here allocates more than a few kilobytes or waits on anything.)</summary>
public sealed class OutputFolderTests
{
    private static void WriteVersion(string folder, string content) =>
        AtomicFile.WriteDirectory(folder, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "a.txt"), content);
            File.WriteAllText(Path.Combine(temp, "b.txt"), content);
        });

    private static void AssertComplete(string folder, string content)
    {
        Assert.Equal(["a.txt", "b.txt"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.All(Directory.GetFiles(folder), f => Assert.Equal(content, File.ReadAllText(f)));
    }

    [Fact]
    public void AFailedSwapLeavesTheOldFolderCompleteAndNoTemporaries()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string target = dir.File("concept");
        WriteVersion(target, "old");
        AtomicFile.SwapFault.Value = _ => throw new IOException("injected rename failure");
        try
        {
            Assert.Throws<IOException>(() => WriteVersion(target, "new"));
        }
        finally
        {
            AtomicFile.SwapFault.Value = null;
        }
        AssertComplete(target, "old");
        Assert.Equal(["concept"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));

        // A failure while filling leaves the old one too.
        Assert.Throws<InvalidOperationException>(() => AtomicFile.WriteDirectory(target, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "a.txt"), "half");
            throw new InvalidOperationException("injected write failure");
        }));
        AssertComplete(target, "old");
        WriteVersion(target, "new");
        AssertComplete(target, "new");
    }

    [Fact]
    public void ACrashBetweenTheRenamesIsRecoveredAtTheNextStart()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string target = dir.File("concept");
        WriteVersion(target, "old");
        // What a kill between "move old aside" and "move new in" leaves: the old one aside, the new one half-written.
        string aside = dir.File($".concept.{Guid.NewGuid():N}.old");
        Directory.Move(target, aside);
        string half = dir.File($".concept.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(half);
        File.WriteAllText(Path.Combine(half, "a.txt"), "new");
        string staleFile = dir.File($".state.safetensors.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(staleFile, "partial");
        string userFile = dir.File(".my-notes.tmp");
        File.WriteAllText(userFile, "not ours");

        var (restored, deleted) = OutputFolders.CleanStaleTemporaries(dir.Path);
        Assert.Equal([target], restored);
        Assert.Equal(2, deleted.Count);
        AssertComplete(target, "old");
        Assert.True(File.Exists(userFile), "a file not of our naming was touched");
        Assert.False(File.Exists(staleFile));
    }

    private static TrainingCheckpointState State(string run, int step) => new() { Stage = 1, StepInStage = step, GlobalStep = step, RunFingerprint = run };

    private static Dictionary<string, torch.Tensor> Tensors() => new() { ["concept.embedding"] = torch.zeros(1, 4) };

    [Fact]
    public void PruningOnlyTouchesCheckpointsOfTheSameRun()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string root = dir.File("checkpoints");
        for (int step = 10; step <= 12; step++) TrainingCheckpoint.Write(root, State("OLD", step), Tensors(), keep: 2);
        for (int step = 1; step <= 4; step++) TrainingCheckpoint.Write(root, State("NEW", step), Tensors(), keep: 2);
        var byRun = TrainingCheckpoint.List(root).GroupBy(c => CheckpointFolder.ReadState(c).RunFingerprint).ToDictionary(g => g.Key, g => g.Select(c => Path.GetFileName(c)!).ToArray());
        Assert.Equal(["checkpoint-0000012", "checkpoint-0000011"], byRun["OLD"]);
        Assert.Equal(["checkpoint-0000004", "checkpoint-0000003"], byRun["NEW"]);
        Assert.Equal(Path.Combine(root, "checkpoint-0000004"), CheckpointFolder.LatestValid(root, "NEW").Checkpoint);
    }

    [Fact]
    public void ATruncatedNewestCheckpointIsReportedAndThePreviousOneUsed()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string root = dir.File("checkpoints");
        TrainingCheckpoint.Write(root, State("RUN", 1), Tensors(), keep: 3);
        string newest = TrainingCheckpoint.Write(root, State("RUN", 2), Tensors(), keep: 3);
        string state = Path.Combine(newest, TrainingCheckpoint.StateFile);
        using (var s = new FileStream(state, FileMode.Open)) s.SetLength(s.Length - 8);
        var (checkpoint, skipped) = CheckpointFolder.LatestValid(root);
        Assert.Equal(Path.Combine(root, "checkpoint-0000001"), checkpoint);
        Assert.Equal(newest, Assert.Single(skipped).Path);
        Assert.Equal(1, TrainingCheckpoint.Read(root).State.GlobalStep);
    }

    [Fact]
    public void UnwritableOrFullFoldersAreRefusedWithSizes()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string blocker = dir.File("file");
        File.WriteAllText(blocker, "x");
        var notWritable = Assert.Throws<OutputFolderException>(() => OutputFolders.RequireWritable(Path.Combine(blocker, "out"), 1, "checkpoints"));
        Assert.Contains("not writable", notWritable.Message);
        var full = Assert.Throws<OutputFolderException>(() => OutputFolders.RequireWritable(dir.File("out"), long.MaxValue / 2, "checkpoints"));
        Assert.Contains("MiB", full.Message);
        Assert.Contains("free", full.Message);
    }

    [Fact]
    public async Task TrainingRefusesACheckpointFolderOfAnotherRunUnlessAllowed()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string root = dir.File("checkpoints");
        TrainingCheckpoint.Write(root, State("SOMEONE-ELSE", 5), Tensors());
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options(root)))
        {
            var refused = await Assert.ThrowsAsync<OutputFolderException>(() => pipeline.TrainAsync(TinyPipeline.Dog()));
            Assert.Contains("another run", refused.Message);
        }
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options(root) with { OverwriteOtherRuns = true }))
        {
            await pipeline.TrainAsync(TinyPipeline.Dog());
        }
        Assert.Contains(TrainingCheckpoint.List(root), c => CheckpointFolder.ReadState(c).RunFingerprint == "SOMEONE-ELSE");
    }

    [Fact]
    public async Task SavingWithoutOverwriteRefusesAnExistingConcept()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string target = dir.File("concept");
        WriteVersion(target, "theirs");
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 0), TinyPipeline.Options());
        var model = await pipeline.TrainAsync(TinyPipeline.Dog());
        await Assert.ThrowsAsync<OutputFolderException>(() => model.SaveAsync(target, overwrite: false));
        AssertComplete(target, "theirs");
        await model.SaveAsync(target, overwrite: true);
        Assert.True(File.Exists(Path.Combine(target, PersonalizedModel.EmbeddingFile)));
    }

    [Fact]
    public async Task CliTrainRefusesAnOutputFolderHoldingAConceptUnlessForced()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteVersion(dir.File("out/concept"), "theirs");
        var (console, output) = AttnDreamBooth.Tests.Cli.CapturedConsole.Create();
        int exit = await AttnDreamBooth.Cli.CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", dir.File("out"), "--steps", "1,0,0"], console);
        Assert.Equal(2, exit);
        Assert.Contains("--force", output.ToString());
        AssertComplete(dir.File("out/concept"), "theirs");
    }

    [Fact]
    public async Task DisposingWhileTrainingThrowsAndLeavesTheRunIntact()
    {
        using var cts = new CancellationTokenSource();
        var pipeline = TinyPipeline.Build(TinyPipeline.Plan(3, 0, 0), TinyPipeline.Options());
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var proceed = new ManualResetEventSlim();
        // The training thread waits inside its first progress report until the test has tried to dispose.
        var progress = new InlineProgress<TrainingProgress>(_ =>
        {
            started.TrySetResult();
            proceed.Wait(TimeSpan.FromMinutes(2));
        });
        var training = pipeline.TrainAsync(TinyPipeline.Dog(), progress, cts.Token);
        await started.Task.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Throws<InvalidOperationException>(pipeline.Dispose);
        cts.Cancel();
        proceed.Set();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => training);
        pipeline.Dispose();
        pipeline.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pipeline.GenerateAsync("a dog"));
    }

}
