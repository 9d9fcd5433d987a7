using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace AttnDreamBooth.Benchmarks.Attention;

/// <summary>
/// Native peak memory of one benchmark invocation on Linux: the kernel's resident-set high-water mark (VmHWM) is reset
/// to the current RSS by writing "5" to /proc/self/clear_refs, the operation runs, and peak = VmHWM - RSS at the reset.
/// glibc is told to serve every allocation above 64 KiB with mmap and to return it on free (a fixed threshold also
/// disables its dynamic adjustment), so freed tensors leave the RSS and each measurement starts from live memory only.
/// Results go to a folder under the temp directory so the column works in and out of process.
/// </summary>
internal static class PeakNativeMemory
{
    private const int MallocTrimThreshold = -1;
    private const int MallocMmapThreshold = -3;
    private static readonly ConcurrentDictionary<string, long> MaxPeak = new(StringComparer.Ordinal);
    private static bool _configured;

    public static string Folder => Path.Combine(Path.GetTempPath(), "attndreambooth-bench-peak");

    public static bool Supported => OperatingSystem.IsLinux() && File.Exists("/proc/self/clear_refs");

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int param, int value);

    /// <summary>Fixes glibc's thresholds (once per process).</summary>
    public static void Configure()
    {
        if (_configured || !OperatingSystem.IsLinux()) return;
        Mallopt(MallocMmapThreshold, 64 * 1024);
        Mallopt(MallocTrimThreshold, 128 * 1024);
        _configured = true;
    }

    /// <summary>Measures until disposed and keeps the maximum per key.</summary>
    public static Scope Measure(string key) => new(key);

    /// <summary>Writes the maxima of this process to <see cref="Folder"/>.</summary>
    public static void Flush()
    {
        Directory.CreateDirectory(Folder);
        foreach (var (key, bytes) in MaxPeak) File.WriteAllText(Path.Combine(Folder, key + ".txt"), bytes.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Reads a stored maximum.</summary>
    public static long? Read(string key)
    {
        string file = Path.Combine(Folder, key + ".txt");
        return File.Exists(file) && long.TryParse(File.ReadAllText(file), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;
    }

    /// <summary>Removes stored results (call before a run).</summary>
    public static void Reset()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }

    private static long StatusKiB(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[1], CultureInfo.InvariantCulture);
        }
        return 0;
    }

    /// <summary>An active measurement.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly string _key;
        private readonly long _startKiB;

        public Scope(string key)
        {
            _key = key;
            if (!Supported)
            {
                _startKiB = -1;
                return;
            }
            File.WriteAllText("/proc/self/clear_refs", "5");
            _startKiB = StatusKiB("VmRSS:");
        }

        public void Dispose()
        {
            if (_startKiB < 0) return;
            long peak = (StatusKiB("VmHWM:") - _startKiB) * 1024;
            MaxPeak.AddOrUpdate(_key, peak, (_, old) => Math.Max(old, peak));
        }
    }
}

/// <summary>The "Peak native" column: the largest <see cref="PeakNativeMemory"/> measurement of a benchmark case.</summary>
internal sealed class PeakNativeMemoryColumn : IColumn
{
    public string Id => "PeakNativeMemory";
    public string ColumnName => "Peak native";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Metric;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Size;
    public string Legend => "Resident-set growth over the invocation (VmHWM after resetting it via /proc/self/clear_refs), max over iterations";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => PeakNativeMemory.Supported;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        string key = AttentionKernelBenchmarkBase.Key(benchmarkCase.Descriptor.Type.Name, benchmarkCase.Descriptor.WorkloadMethod.Name,
            benchmarkCase.Parameters.Items.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => Convert.ToString(p.Value, CultureInfo.InvariantCulture) ?? ""));
        return PeakNativeMemory.Read(key) is { } bytes ? (bytes / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture) + " MB" : "n/a";
    }
}
