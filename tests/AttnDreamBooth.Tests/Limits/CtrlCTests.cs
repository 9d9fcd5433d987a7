using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Limits;

/// <summary>
/// Ctrl-C on a real CLI child process (SIGINT, under the 6 GiB address-space limit and a timeout): the run finishes its
/// step, writes a checkpoint of it, says where it stopped and how to resume, and exits 130; the resume says what it resumed.
/// SIGTERM stops it the same way and exits 143.
/// A second Ctrl-C while that step and checkpoint are still being finished ends the process at once.
/// </summary>
public sealed partial class CtrlCTests
{
    [GeneratedRegex(@"Cancelled at stage (\d) step (\d+); resume with: .*--resume")]
    private static partial Regex CancelledLine();

    private static string[] Train(string output) =>
        ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", output,
         "--steps", "3,30,3", "--batch-size", "1", "--checkpoint-every", "1000", "--seed", "5"];

    private static void Signal(Process process, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    [Fact]
    public void FirstCtrlCCheckpointsTheCurrentStepAndExits130()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string output = dir.File("out");
        var state = StopInsideStageTwo(output, "INT", 130);

        var resumed = BoundedCli.Run([.. Train(output), "--resume"], TimeSpan.FromMinutes(6), limitAddressSpace: false);
        Assert.True(resumed.ExitCode == 0, resumed.Output);
        Assert.Contains($"at stage {state.Stage} {(TrainingStage)state.Stage} step {state.StepInStage}/", resumed.Output);
        Assert.Contains($"(step {state.GlobalStep}/", resumed.Output);
        Assert.True(Directory.Exists(Path.Combine(output, "concept")));
    }

    // `kill`, a service manager or a container stop send SIGTERM, and a background job (`nohup … &`) ignores SIGINT: the
    // orderly stop must not depend on Ctrl-C. (Resuming its checkpoint is the Ctrl-C case's: the checkpoint is the same.)
    [Fact]
    public void SigtermCheckpointsTheCurrentStepLikeCtrlCAndExits143()
    {
        using var dir = TestPaths.CreateTempDirectory();
        StopInsideStageTwo(dir.File("out"), "TERM", 143);
    }

    /// <summary>Starts a training run, sends <paramref name="signal"/> inside stage 2 and checks the orderly stop: the exit
    /// status, the "Cancelled at … resume with" line, and a checkpoint of the step it names.</summary>
    private static TrainingCheckpointState StopInsideStageTwo(string output, string signal, int expectedExit)
    {
        string checkpoints = Path.Combine(output, "checkpoints");
        using var process = BoundedCli.Start(Train(output), limitAddressSpace: false, interruptible: true);
        var text = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // Stage 1 ends with a checkpoint at global step 3; interrupt inside stage 2 (30 steps, no periodic checkpoints).
        var clock = Stopwatch.StartNew();
        while (TrainingCheckpoint.Latest(checkpoints) is null)
        {
            if (process.HasExited)
            {
                lock (text) Assert.Fail($"the run ended before it could be interrupted:\n{text}");
            }
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(4), "no checkpoint within 4 minutes");
            BoundedCli.RequireWorkingSetBelow(process, 4L << 30);
            Thread.Sleep(20);
        }
        Thread.Sleep(1500);
        Signal(process, signal);
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            lock (text) Assert.Fail($"the run did not stop within 2 minutes of SIG{signal}:\n{text}");
        }
        process.WaitForExit();
        string log;
        lock (text) log = text.ToString();
        Assert.True(process.ExitCode == expectedExit, $"exit {process.ExitCode}:\n{log}");
        Assert.Contains("Stopping after the current step and writing a checkpoint", log);
        var match = CancelledLine().Match(log);
        Assert.True(match.Success, $"no 'Cancelled at stage s step k; resume with: …' line:\n{log}");
        int stage = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        int step = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(stage == 2 && step is >= 0 and < 30, $"stopped at stage {stage} step {step}");
        var state = CheckpointFolder.ReadState(TrainingCheckpoint.Latest(checkpoints)!);
        // At step 0 of stage 2 the end-of-stage-1 checkpoint already holds everything; otherwise the cancelled step's.
        Assert.Equal(step == 0 ? (1, 3, 3) : (2, step, 3 + step), (state.Stage, state.StepInStage, state.GlobalStep));
        Assert.False(Directory.Exists(Path.Combine(output, "concept")));
        return state;
    }

    private const int SigInt = 2;

    // The test process's own kill(2): the second signal must follow the first within the few hundred milliseconds the CLI
    // spends finishing its step and checkpoint, less than starting a `kill` process can promise.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    // The second signal races the run's orderly stop (well under a second): when the run has already exited before it
    // could be delivered (kill fails) or had already finished stopping (its "Cancelled" line is there), the scenario was
    // not reached and is run again; every assertion applies to a run
    // that did receive it.
    [Fact]
    public void SecondCtrlCAbortsAtOnceAndResumeUsesTheLastCompleteCheckpoint()
    {
        for (int attempt = 1; attempt <= 3; attempt++)
        {
            if (SecondCtrlCScenario()) return;
        }
        Assert.Fail("in 3 runs the first Ctrl-C's orderly stop always finished before the second signal could be delivered");
    }

    private bool SecondCtrlCScenario()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string output = dir.File("out");
        string checkpoints = Path.Combine(output, "checkpoints");
        using var process = BoundedCli.Start(Train(output), limitAddressSpace: false, interruptible: true);
        var text = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        TimeSpan? secondSignalAt = null;
        int secondSent = 0;
        int secondResult = -1;
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (text) text.AppendLine(line);
            // The first Ctrl-C was handled (the run is now finishing its step and writing a checkpoint): press it again.
            if (line.Contains("Stopping after the current step", StringComparison.Ordinal) && Interlocked.Exchange(ref secondSent, 1) == 0)
            {
                secondSignalAt = clock.Elapsed;
                // No assertion on this reader thread (it would take the test host down); the result is checked below.
                secondResult = SendSignal(process.Id, SigInt);
            }
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        while (TrainingCheckpoint.Latest(checkpoints) is null)
        {
            if (process.HasExited)
            {
                lock (text) Assert.Fail($"the run ended before it could be interrupted:\n{text}");
            }
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(4), "no checkpoint within 4 minutes");
            BoundedCli.RequireWorkingSetBelow(process, 4L << 30);
            Thread.Sleep(20);
        }
        Thread.Sleep(1500);
        Assert.Equal(0, SendSignal(process.Id, SigInt));
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            lock (text) Assert.Fail($"the run did not stop within 2 minutes of Ctrl-C:\n{text}");
        }
        process.WaitForExit();
        var exitedAt = clock.Elapsed;
        string log;
        lock (text) log = text.ToString();
        Assert.True(secondSignalAt is not null, $"the first Ctrl-C was never acknowledged:\n{log}");
        if (secondResult != 0) return false;
        // The signal can also land after the orderly stop has printed its line and released the handler: the run then ended
        // through the first Ctrl-C (its own line says so), so the scenario was not reached either.
        if (CancelledLine().IsMatch(log)) return false;
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}:\n{log}");
        Assert.Contains("A checkpoint that was being written is incomplete and will be ignored; --resume continues from the last complete checkpoint.", log);
        Assert.True(exitedAt - secondSignalAt!.Value < TimeSpan.FromSeconds(3), $"exited {(exitedAt - secondSignalAt.Value).TotalSeconds:F1} s after the second Ctrl-C");
        Assert.False(Directory.Exists(Path.Combine(output, "concept")));

        var (valid, skipped) = CheckpointFolder.LatestValid(checkpoints);
        Assert.NotNull(valid);
        Assert.Empty(skipped);
        var state = CheckpointFolder.ReadState(valid!);
        var resumed = BoundedCli.Run([.. Train(output), "--resume"], TimeSpan.FromMinutes(6), limitAddressSpace: false);
        Assert.True(resumed.ExitCode == 0, resumed.Output);
        Assert.Contains($"at stage {state.Stage} {(TrainingStage)state.Stage} step {state.StepInStage}/", resumed.Output);
        Assert.Contains($"(step {state.GlobalStep}/", resumed.Output);
        Assert.True(Directory.Exists(Path.Combine(output, "concept")));
        // Whatever the abort cut off was ours to clean: nothing hidden is left beside the checkpoints.
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(checkpoints), p => Path.GetFileName(p).StartsWith('.'));
        return true;
    }
}
