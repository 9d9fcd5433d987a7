using System.Globalization;
using AttnDreamBooth.Benchmarks.Attention;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>Per-case facts measured inside the benchmark process (bytes, counts), written next to the peak-memory results
/// so columns in the host process can show them.</summary>
internal static class StepFacts
{
    public static void Write(string key, string fact, long value)
    {
        Directory.CreateDirectory(PeakNativeMemory.Folder);
        File.WriteAllText(Path.Combine(PeakNativeMemory.Folder, $"{key}.{fact}.txt"), value.ToString(CultureInfo.InvariantCulture));
    }

    public static long? Read(string key, string fact)
    {
        string file = Path.Combine(PeakNativeMemory.Folder, $"{key}.{fact}.txt");
        return File.Exists(file) && long.TryParse(File.ReadAllText(file), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;
    }
}

/// <summary>A column showing one <see cref="StepFacts"/> value (MB for byte facts, plain numbers otherwise).</summary>
internal sealed class StepFactColumn(string fact, string header, string legend, bool bytes) : IColumn
{
    public string Id => "StepFact." + fact;
    public string ColumnName => header;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Metric;
    public int PriorityInCategory => 1;
    public bool IsNumeric => true;
    public UnitType UnitType => bytes ? UnitType.Size : UnitType.Dimensionless;
    public string Legend => legend;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        string key = AttentionKernelBenchmarkBase.Key(benchmarkCase.Descriptor.Type.Name, benchmarkCase.Descriptor.WorkloadMethod.Name,
            benchmarkCase.Parameters.Items.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => Convert.ToString(p.Value, CultureInfo.InvariantCulture) ?? ""));
        if (StepFacts.Read(key, fact) is not { } value) return "n/a";
        return bytes ? (value / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture) + " MB" : value.ToString(CultureInfo.InvariantCulture);
    }
}
