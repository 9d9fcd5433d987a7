using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using AttnDreamBooth.Benchmarks.Attention;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// The training memory table: steady RSS, peak RSS and step time of one U-Net training step per stage, latent size and
/// combination of memory options (<see cref="MemoryTableRow"/>), each row measured in a fresh process
/// (<see cref="TrainingStepRig"/>: the trainer's stage rule, frozen-precision rule and optimizer). Results are appended to
/// a JSON-lines file, one object per row, so an interrupted sweep resumes by skipping the rows already there.
/// <code>
/// memory-table sweep    [--out file] [--latents 64,32] [--rows id,id] [--steps 2] [--unet-config file] [--lock file]
/// memory-table row id   [--out file] [--steps 2] [--unet-config file]
/// memory-table markdown [--out file]
/// memory-table rows     [--latents 64,32]
/// </code>
/// </summary>
internal static class MemoryTable
{
    public const string Command = "memory-table";
    private const string DefaultFile = "memory-table.jsonl";
    // Ids keep their '+' readable in the file.
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>What one row measured.</summary>
    internal sealed record Result
    {
        public required string Id { get; init; }
        public required string Stage { get; init; }
        public required int Latent { get; init; }
        public required bool Checkpointing { get; init; }
        public required bool Bf16FrozenWeights { get; init; }
        public required bool EightBitStates { get; init; }
        public required int LoraRank { get; init; }
        public required string UNetConfig { get; init; }
        public required long TrainableElements { get; init; }
        public required int CastParameters { get; init; }
        public required long OptimizerStateBytes { get; init; }
        public required int FrozenWithGradient { get; init; }
        /// <summary>RSS of the process with libtorch loaded, before the U-Net is built.</summary>
        public required long BaselineRssBytes { get; init; }
        /// <summary>VmHWM over building the U-Net, selecting, casting and creating the optimizer.</summary>
        public required long BuildPeakBytes { get; init; }
        public required double BuildSeconds { get; init; }
        /// <summary>The unmeasured set-up step (allocates the optimizer's moments): its seconds and VmHWM.</summary>
        public required double SetupStepSeconds { get; init; }
        public required long SetupStepPeakBytes { get; init; }
        /// <summary>RSS before each measured step: weights + optimizer moments (gradients are dropped after each step, as the trainer does).</summary>
        public required long[] SteadyRssBytes { get; init; }
        /// <summary>VmHWM during each measured step (reset before it).</summary>
        public required long[] PeakRssBytes { get; init; }
        /// <summary>VmHWM after backward, before clipping and the optimizer, per measured step.</summary>
        public required long[] BackwardPeakBytes { get; init; }
        public required double[] StepSeconds { get; init; }
        public required double[] ForwardBackwardSeconds { get; init; }
        public required double[] OptimizerSeconds { get; init; }
        public required int TorchThreads { get; init; }
        /// <summary>libtorch's huge-page switch during the row (<c>THP_MEM_ALLOC_ENABLE</c>); null in rows recorded
        /// before the library turned it on by default, which ran without it.</summary>
        public string? HugePages { get; init; }
        public required string LoadBefore { get; init; }
        public required string LoadAfter { get; init; }
        public required DateTimeOffset StartedUtc { get; init; }
        public required DateTimeOffset FinishedUtc { get; init; }
    }

    public static int Run(string[] args)
    {
        try
        {
            return RunCore(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return Usage(e.Message);
        }
    }

    private static int RunCore(string[] args)
    {
        if (args.Length == 0) return Usage("no sub-command");
        string? output = null, unetConfig = null, lockFile = null, only = null;
        int[] latents = [64, 32];
        int steps = 2;
        var positional = new List<string>();
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Length: output = args[++i]; break;
                case "--unet-config" when i + 1 < args.Length: unetConfig = Path.GetFullPath(args[++i]); break;
                case "--lock" when i + 1 < args.Length: lockFile = args[++i]; break;
                case "--rows" when i + 1 < args.Length: only = args[++i]; break;
                case "--latents" when i + 1 < args.Length:
                    latents = args[++i].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                    break;
                case "--steps" when i + 1 < args.Length:
                    steps = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    if (steps < 2) return Usage("--steps must be ≥ 2");
                    break;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal)) return Usage($"unknown option '{args[i]}'");
                    positional.Add(args[i]);
                    break;
            }
        }
        output = Path.GetFullPath(output ?? DefaultFile);
        switch (args[0])
        {
            case "row" when positional.Count == 1:
                return MeasureRow(MemoryTableRow.Parse(positional[0]), output, steps, unetConfig);
            case "sweep" when positional.Count == 0:
                var rows = only is null ? MemoryTableRow.All(latents) : only.Split(',').Select(MemoryTableRow.Parse).ToArray();
                return Sweep(rows, output, steps, unetConfig, lockFile);
            case "markdown" when positional.Count == 0:
                Console.Write(Markdown(ReadResults(output)));
                return 0;
            case "rows" when positional.Count == 0:
                foreach (var row in MemoryTableRow.All(latents)) Console.WriteLine(row.Id);
                return 0;
            default:
                return Usage($"unknown sub-command or arguments '{string.Join(' ', args)}'");
        }
    }

    private static int Usage(string problem)
    {
        Console.Error.WriteLine($"{Command}: {problem}. Usage:");
        Console.Error.WriteLine($"  {Command} sweep    [--out file] [--latents 64,32] [--rows id,id] [--steps 2] [--unet-config file] [--lock file]");
        Console.Error.WriteLine($"  {Command} row id   [--out file] [--steps 2] [--unet-config file]     (id: Stage@latent[+ckpt][+bf16][+8bit])");
        Console.Error.WriteLine($"  {Command} markdown [--out file]");
        Console.Error.WriteLine($"  {Command} rows     [--latents 64,32]");
        return 2;
    }

    /// <summary>Runs each row not yet in <paramref name="output"/> in a fresh process (under <c>flock</c> of
    /// <paramref name="lockFile"/> per row when given); a failed row is reported and left for the next sweep.</summary>
    private static int Sweep(IReadOnlyList<MemoryTableRow> rows, string output, int steps, string? unetConfig, string? lockFile)
    {
        var done = ReadResults(output).Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var todo = rows.Where(r => !done.Contains(r.Id)).ToArray();
        Console.WriteLine($"{rows.Count} rows, {rows.Count - todo.Length} already in {output}, {todo.Length} to measure.");
        int failed = 0;
        foreach (var row in todo)
        {
            // Another sweep (or a row left running) may have measured it meanwhile.
            if (ReadResults(output).Any(r => r.Id == row.Id)) continue;
            var start = new ProcessStartInfo { UseShellExecute = false };
            string self = Environment.ProcessPath ?? throw new InvalidOperationException("The program's path is unknown.");
            if (lockFile is not null)
            {
                start.FileName = "flock";
                start.ArgumentList.Add(lockFile);
                start.ArgumentList.Add(self);
            }
            else
            {
                start.FileName = self;
            }
            // Run through the host when started as "dotnet program.dll".
            if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(MemoryTable).Assembly.Location);
            foreach (string a in new[] { Command, "row", row.Id, "--out", output, "--steps", steps.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
            if (unetConfig is not null)
            {
                start.ArgumentList.Add("--unet-config");
                start.ArgumentList.Add(unetConfig);
            }
            Console.WriteLine($"{DateTimeOffset.UtcNow:u} {row.Id}: start (load {LoadAverage()})");
            using var child = Process.Start(start) ?? throw new InvalidOperationException("Could not start " + start.FileName);
            child.WaitForExit();
            if (child.ExitCode != 0)
            {
                failed++;
                Console.WriteLine($"{DateTimeOffset.UtcNow:u} {row.Id}: FAILED, exit code {child.ExitCode}");
            }
        }
        return failed == 0 ? 0 : 1;
    }

    private static int MeasureRow(MemoryTableRow row, string output, int steps, string? unetConfig)
    {
        PeakNativeMemory.Configure();
        const int loraRank = 4;
        var started = DateTimeOffset.UtcNow;
        string loadBefore = LoadAverage();
        using (var probe = ones(1)) probe.add_(1);
        long baseline = TrainingStepRig.StatusKiB("VmRSS:") * 1024;
        string config = unetConfig ?? TrainingStepRig.RealSizeConfig();
        var clock = Stopwatch.StartNew();
        using var rig = new TrainingStepRig(config, row.Stage, row.Latent, row.Options, loraRank, keepGradients: false);
        double build = clock.Elapsed.TotalSeconds;
        long buildPeak = TrainingStepRig.StatusKiB("VmHWM:") * 1024;

        ResetPeak();
        clock.Restart();
        rig.Step();
        double setupSeconds = clock.Elapsed.TotalSeconds;
        long setupPeak = TrainingStepRig.StatusKiB("VmHWM:") * 1024;
        Console.WriteLine($"{row.Id}: built in {build:F1} s, set-up step {setupSeconds:F1} s");

        var steady = new long[steps];
        var peak = new long[steps];
        var backwardPeak = new long[steps];
        var stepSeconds = new double[steps];
        var forwardBackward = new double[steps];
        var optimizer = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            steady[i] = TrainingStepRig.StatusKiB("VmRSS:") * 1024;
            ResetPeak();
            int step = i;
            (forwardBackward[i], optimizer[i]) = rig.Step(() => backwardPeak[step] = TrainingStepRig.StatusKiB("VmHWM:") * 1024);
            peak[i] = TrainingStepRig.StatusKiB("VmHWM:") * 1024;
            stepSeconds[i] = forwardBackward[i] + optimizer[i];
            Console.WriteLine($"{row.Id}: step {i + 1} {stepSeconds[i]:F1} s, steady {Gib(steady[i])} GiB, peak {Gib(peak[i])} GiB");
        }
        var result = new Result
        {
            Id = row.Id,
            Stage = row.Stage.ToString(),
            Latent = row.Latent,
            Checkpointing = row.Checkpointing,
            Bf16FrozenWeights = row.Bf16FrozenWeights,
            EightBitStates = row.EightBitStates,
            LoraRank = loraRank,
            UNetConfig = Path.GetRelativePath(TrainingStepRig.RepoRoot(), config),
            TrainableElements = rig.TrainableElements,
            CastParameters = rig.CastParameters,
            OptimizerStateBytes = rig.OptimizerStateBytes,
            FrozenWithGradient = rig.FrozenWithGradient,
            BaselineRssBytes = baseline,
            BuildPeakBytes = buildPeak,
            BuildSeconds = build,
            SetupStepSeconds = setupSeconds,
            SetupStepPeakBytes = setupPeak,
            SteadyRssBytes = steady,
            PeakRssBytes = peak,
            BackwardPeakBytes = backwardPeak,
            StepSeconds = stepSeconds,
            ForwardBackwardSeconds = forwardBackward,
            OptimizerSeconds = optimizer,
            TorchThreads = get_num_threads(),
            HugePages = AttnDreamBooth.HugePages.NativeValue(AttnDreamBooth.HugePages.Variable) ?? "unset",
            LoadBefore = loadBefore,
            LoadAfter = LoadAverage(),
            StartedUtc = started,
            FinishedUtc = DateTimeOffset.UtcNow,
        };
        // One write of one line with O_APPEND: a row is either in the file whole or not at all.
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        using (var file = new FileStream(output, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
        {
            byte[] line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(result, Json) + "\n");
            file.Write(line);
        }
        if (rig.FrozenWithGradient != 0) Console.Error.WriteLine($"{row.Id}: {rig.FrozenWithGradient} frozen parameters hold a gradient.");
        return 0;
    }

    private static void ResetPeak()
    {
        if (PeakNativeMemory.Supported) File.WriteAllText("/proc/self/clear_refs", "5");
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    internal static IReadOnlyList<Result> ReadResults(string file)
    {
        if (!File.Exists(file)) return [];
        var results = new Dictionary<string, Result>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(file))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            Result? r;
            try
            {
                r = JsonSerializer.Deserialize<Result>(line, Json);
            }
            catch (JsonException)
            {
                continue; // a line cut short by a killed process: the row is measured again
            }
            if (r is not null) results[r.Id] = r;
        }
        return results.Values.ToArray();
    }

    private static string Gib(long bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("F2", CultureInfo.InvariantCulture);

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("N1", CultureInfo.InvariantCulture);

    /// <summary>A row's peak: the larger of the set-up step's and the measured steps' (the set-up step allocates the moments).</summary>
    internal static long Peak(Result r) => Math.Max(r.SetupStepPeakBytes, r.PeakRssBytes.Max());

    private static string StageName(string stage) => stage switch
    {
        nameof(BenchmarkStage.TextEmbedding) => "1 embedding",
        nameof(BenchmarkStage.CrossAttention) => "2 cross-attention",
        nameof(BenchmarkStage.FullUNet) => "3 full U-Net",
        nameof(BenchmarkStage.LoraCrossAttention) => "2 LoRA r4",
        nameof(BenchmarkStage.LoraUNet) => "3 LoRA r4",
        _ => stage,
    };

    private static string Options(Result r)
    {
        var parts = new List<string>();
        if (r.Checkpointing) parts.Add("ckpt");
        if (r.Bf16FrozenWeights) parts.Add("bf16 frozen");
        if (r.EightBitStates) parts.Add("8-bit states");
        return parts.Count == 0 ? "–" : string.Join(" + ", parts);
    }

    /// <summary>The table (rows in sweep order) and, for 64×64 latents, which rows fit 8 / 12 / 16 / 24 GiB.</summary>
    internal static string Markdown(IReadOnlyList<Result> results)
    {
        var order = MemoryTableRow.All([64, 32]).Select((r, i) => (r.Id, i)).ToDictionary(p => p.Id, p => p.i, StringComparer.Ordinal);
        var sorted = results.OrderBy(r => order.GetValueOrDefault(r.Id, int.MaxValue)).ThenBy(r => r.Id, StringComparer.Ordinal).ToArray();
        var sb = new StringBuilder();
        sb.AppendLine("| latents | stage | options | trainable | optimizer state (MiB) | steady RSS (GiB) | peak RSS (GiB) | fwd+bwd peak (GiB) | step (s) | fwd+bwd / optimizer (s) | load (1 min, before → after) | row |");
        sb.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|");
        foreach (var r in sorted)
        {
            string steps = string.Join(", ", r.StepSeconds.Select(s => s.ToString("F1", CultureInfo.InvariantCulture)));
            string split = string.Join(", ", r.ForwardBackwardSeconds.Zip(r.OptimizerSeconds, (f, o) =>
                f.ToString("F1", CultureInfo.InvariantCulture) + " / " + o.ToString("F1", CultureInfo.InvariantCulture)));
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Latent}×{r.Latent} | {StageName(r.Stage)} | {Options(r)} | {r.TrainableElements:N0} | {Mib(r.OptimizerStateBytes)} | {Gib(r.SteadyRssBytes.Max())} | **{Gib(Peak(r))}** | {Gib(r.BackwardPeakBytes.Max())} | {r.StepSeconds.Average():F1} ({steps}) | {split} | {r.LoadBefore.Split(' ')[0]} → {r.LoadAfter.Split(' ')[0]} | `{r.Id}` |");
        }
        var at64 = sorted.Where(r => r.Latent == 64).ToArray();
        if (at64.Length > 0)
        {
            sb.AppendLine();
            sb.AppendLine("| budget (64×64) | stage: fastest fitting row (peak GiB, step s) |");
            sb.AppendLine("|---|---|");
            foreach (int budget in new[] { 8, 12, 16, 24 })
            {
                var cells = at64.GroupBy(r => r.Stage).Select(g =>
                {
                    var fit = g.Where(r => Peak(r) <= budget * (1L << 30)).OrderBy(r => r.StepSeconds.Average()).FirstOrDefault();
                    return fit is null ? $"{StageName(g.Key)}: none"
                        : $"{StageName(g.Key)}: `{fit.Id}` ({Gib(Peak(fit))}, {fit.StepSeconds.Average():F0})";
                });
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {budget} GiB | {string.Join("; ", cells)} |");
            }
        }
        return sb.ToString();
    }
}
