using System.Diagnostics;
using System.Reflection;

namespace AttnDreamBooth.Tests.Limits;

/// <summary>
/// Runs the CLI in a child process under an address-space limit (prlimit --as) and a wall-clock timeout, both enforced
/// here: a case that allocates without bound dies at the limit, one that hangs is killed at the timeout, and either
/// fails the test instead of taking the machine or the suite down.
/// </summary>
internal static class BoundedCli
{
    public const long AddressSpaceBytes = 6L << 30;

    public static string CliAssembly
    {
        get
        {
            string configuration = typeof(BoundedCli).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
            string path = Path.Combine(TestPaths.RepoRoot, "samples", "AttnDreamBooth.Cli", "bin", configuration, "net10.0", "AttnDreamBooth.Cli.dll");
            Assert.True(File.Exists(path), $"The CLI is not built at '{path}'.");
            return path;
        }
    }

    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed);

    /// <summary>Starts the CLI under the limits (the caller waits, signals or kills).</summary>
    /// <param name="args">CLI arguments.</param>
    /// <param name="limitAddressSpace">Run under prlimit --as (with a GC heap limit, which the runtime needs to start under
    /// it). Training runs pass false and bound memory by polling <see cref="RequireWorkingSetBelow"/> instead: the GC heap
    /// limit makes training hit a pre-existing NaN (see the report on branch limits).</param>
    /// <param name="interruptible">Start the CLI with SIGINT at its default action, as a terminal starts a command. A test
    /// run launched as a background job without job control (<c>(dotnet test &amp;)</c> in a script) ignores SIGINT, its
    /// children inherit that, and .NET honours it: Ctrl-C tests would then test nothing. (<c>env --default-signal</c>,
    /// GNU coreutils 8.31 or later; exec's, so the process id stays the CLI's.)</param>
    /// <param name="environment">Variables set for the child on top of this process's environment.</param>
    public static Process Start(IEnumerable<string> args, bool limitAddressSpace = true, bool interruptible = false,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(limitAddressSpace ? "prlimit" : interruptible ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (limitAddressSpace)
        {
            info.ArgumentList.Add($"--as={AddressSpaceBytes}");
            info.ArgumentList.Add("--");
            if (interruptible) info.ArgumentList.Add("env");
            // The GC would otherwise reserve far more address space than the limit allows; the managed heap stays small.
            info.Environment["DOTNET_GCHeapHardLimit"] = "0x30000000";
        }
        if (interruptible)
        {
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add("dotnet");
        }
        else if (limitAddressSpace)
        {
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(CliAssembly);
        foreach (string a in args) info.ArgumentList.Add(a);
        info.Environment["COLUMNS"] = "400";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        return Process.Start(info)!;
    }

    /// <summary>Kills the process and fails when its resident memory exceeds <paramref name="bytes"/>.</summary>
    public static void RequireWorkingSetBelow(Process process, long bytes)
    {
        long seen;
        try
        {
            process.Refresh();
            if (process.HasExited) return;
            seen = process.WorkingSet64;
        }
        catch (InvalidOperationException) when (process.HasExited)
        {
            // It exited between the check and the read: nothing left to measure.
            return;
        }
        if (seen <= bytes) return;
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        Assert.Fail($"the CLI used {seen >> 20} MiB, above the {bytes >> 20} MiB bound");
    }

    /// <summary>Runs to completion within <paramref name="timeout"/> (killed and failed otherwise).</summary>
    public static Result Run(IEnumerable<string> args, TimeSpan? timeout = null, bool limitAddressSpace = true,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var clock = Stopwatch.StartNew();
        using var process = Start(args, limitAddressSpace, environment: environment);
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var limit = timeout ?? TimeSpan.FromSeconds(90);
        while (!process.WaitForExit(TimeSpan.FromMilliseconds(200)) && clock.Elapsed < limit) RequireWorkingSetBelow(process, 4L << 30);
        if (!process.WaitForExit(TimeSpan.Zero))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"the CLI did not finish within {limit.TotalSeconds} s (hang); output so far:\n{output}");
        }
        process.WaitForExit();
        lock (output) return new Result(process.ExitCode, output.ToString(), clock.Elapsed);
    }

    /// <summary>Asserts a clean refusal: exit 2, the expected words, no stack trace.</summary>
    public static void AssertRefused(Result result, params string[] expected)
    {
        Assert.True(result.ExitCode == 2, $"exit {result.ExitCode} (expected 2):\n{result.Output}");
        foreach (string e in expected) Assert.Contains(e, result.Output);
        Assert.DoesNotContain("   at ", result.Output);
        Assert.Contains("error:", result.Output);
    }
}
