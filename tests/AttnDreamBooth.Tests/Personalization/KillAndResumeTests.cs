using System.Diagnostics;
using System.Reflection;
using AttnDreamBooth.IO;
using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// A training process killed with SIGKILL mid-stage and resumed from its last checkpoint ends with weights
/// bit-identical to an uninterrupted run (same seed, CPU). Runs the CLI sample as a child process.
/// </summary>
public sealed class KillAndResumeTests
{
    private static string CliAssembly
    {
        get
        {
            string configuration = typeof(KillAndResumeTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
            string path = Path.Combine(TestPaths.RepoRoot, "samples", "AttnDreamBooth.Cli", "bin", configuration, "net10.0", "AttnDreamBooth.Cli.dll");
            Assert.True(File.Exists(path), $"The CLI is not built at '{path}'.");
            return path;
        }
    }

    private static Process StartTraining(string output, bool resume)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(CliAssembly);
        foreach (string a in new[] { "train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", output,
                     "--steps", "4,4,4", "--batch-size", "1", "--checkpoint-every", "1", "--seed", "5" })
        {
            info.ArgumentList.Add(a);
        }
        if (resume) info.ArgumentList.Add("--resume");
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Finish(Process process)
    {
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(4)), "training did not finish");
        Assert.Equal(0, process.ExitCode);
    }

    [Fact]
    public void KilledRunResumesToBitIdenticalWeights()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using (var uninterrupted = StartTraining(dir.File("a"), resume: false)) Finish(uninterrupted);

        string checkpoints = Path.Combine(dir.File("b"), "checkpoints");
        using (var victim = StartTraining(dir.File("b"), resume: false))
        {
            // Kill once the run is inside stage 2 (global step 5 or later), i.e. mid-stage with U-Net and optimizer state.
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromMinutes(4))
            {
                string? latest = TrainingCheckpoint.Latest(checkpoints);
                if (latest is not null && TrainingCheckpoint.Read(latest).State.GlobalStep >= 5) break;
                Assert.False(victim.HasExited, "the run finished before it could be interrupted");
                Thread.Sleep(20);
            }
            victim.Kill(entireProcessTree: true);
            victim.WaitForExit();
            Assert.NotEqual(0, victim.ExitCode);
        }
        var (state, _) = TrainingCheckpoint.Read(TrainingCheckpoint.Latest(checkpoints)!);
        Assert.True(state.GlobalStep < 12, "the killed run must not have completed");
        Assert.False(Directory.Exists(Path.Combine(dir.File("b"), "concept")));

        using (var resumed = StartTraining(dir.File("b"), resume: true)) Finish(resumed);

        foreach (string file in new[] { "learned_embeds.safetensors", "unet/diffusion_pytorch_model.safetensors" })
        {
            using var expected = SafetensorsFile.Open(Path.Combine(dir.File("a"), "concept", file));
            using var actual = SafetensorsFile.Open(Path.Combine(dir.File("b"), "concept", file));
            Assert.Equal(expected.Names, actual.Names);
            foreach (string name in expected.Names)
            {
                using var e = expected.ReadTensor(name);
                using var a = actual.ReadTensor(name);
                Assert.True(TinyPipeline.BitEqual(e, a), $"{file}: {name} differs after kill and resume");
            }
        }
    }
}
