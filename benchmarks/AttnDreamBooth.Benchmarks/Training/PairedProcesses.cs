using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// <c>stage-ratios --pairs N</c>: the product as it was against the product as it is, in one command. libtorch reads its
/// huge-page switch once per process, so the two sides cannot share a process: each pair is a "before" child (huge pages
/// off, stage 3 with the multi-op AdamW in the standard layout) and a "now" child (huge pages on, stages 3 and 2 as the
/// trainer runs them), one after the other, the order alternating from pair to pair so that a drift in the machine's
/// load does not always favour the same side; each ratio is taken between the two processes of one pair.
/// </summary>
internal static class PairedProcesses
{
    private sealed record Side(string Name, string Variants, string HugePages);

    private static readonly Side Before = new("before", "before", "0");
    private static readonly Side Now = new("now", "now", "1");

    // The issue's targets, printed next to what was measured (nothing here depends on them).
    private const double Stage3Target32 = 0.65, Stage3Target64 = 0.75, AdamWTarget = 0.4, Stage2Target = 0.5, ForwardTarget = 0.75;

    public static int Run(int[] latents, int rounds, int pairs, string? output)
    {
        string work = Path.Combine(Path.GetTempPath(), $"stage-ratios-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        var measured = new List<(int Pair, Side First, IReadOnlyList<StageRatios.Measurement> Before, IReadOnlyList<StageRatios.Measurement> Now)>();
        var raw = new StringBuilder();
        for (int pair = 1; pair <= pairs; pair++)
        {
            var order = pair % 2 == 1 ? new[] { Before, Now } : new[] { Now, Before };
            var results = new Dictionary<Side, IReadOnlyList<StageRatios.Measurement>>();
            foreach (var side in order)
            {
                string json = Path.Combine(work, $"pair{pair}-{side.Name}.json");
                string markdown = Path.Combine(work, $"pair{pair}-{side.Name}.md");
                Console.Error.WriteLine($"pair {pair}/{pairs}: {side.Name} process ({HugePages.Variable}={side.HugePages}) starting {DateTime.UtcNow:HH:mm:ss} UTC");
                int exit = RunChild(side, latents, rounds, json, markdown);
                if (exit != 0)
                {
                    Console.Error.WriteLine($"The {side.Name} process of pair {pair} exited with {exit}; its partial report is in {work}.");
                    return exit;
                }
                results[side] = JsonSerializer.Deserialize<List<StageRatios.Measurement>>(File.ReadAllText(json), StageRatios.JsonOptions)
                    ?? throw new InvalidDataException($"{json} holds no measurements.");
                raw.AppendLine(CultureInfo.InvariantCulture, $"\n## Pair {pair}, {side.Name} process\n").Append(File.ReadAllText(markdown));
            }
            measured.Add((pair, order[0], results[Before], results[Now]));
            string report = Report(latents, rounds, pairs, measured) + "\n# The processes' own reports\n" + raw;
            Console.WriteLine(report);
            // Written after every pair, so a stopped run keeps what it measured.
            if (output is not null) AtomicFile.WriteAllText(output, report);
        }
        // Kept when a process fails (its partial report is there); not needed once every report is in the output.
        Directory.Delete(work, recursive: true);
        return 0;
    }

    private static int RunChild(Side side, int[] latents, int rounds, string json, string markdown)
    {
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("The process path is unknown; run the benchmarks' own executable.");
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        // Under `dotnet App.dll` the host is dotnet itself and needs the assembly; the apphost runs it directly.
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(typeof(PairedProcesses).Assembly.Location);
        foreach (string arg in new[]
        {
            StageRatios.Command, "--latents", string.Join(',', latents.Select(l => l.ToString(CultureInfo.InvariantCulture))),
            "--rounds", rounds.ToString(CultureInfo.InvariantCulture), "--variants", side.Variants, "--json", json, "--out", markdown,
        })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment[HugePages.Variable] = side.HugePages;
        using var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {host}.");
        child.WaitForExit();
        return child.ExitCode;
    }

    private static string Report(int[] latents, int rounds, int pairs,
        List<(int Pair, Side First, IReadOnlyList<StageRatios.Measurement> Before, IReadOnlyList<StageRatios.Measurement> Now)> measured)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"# Stage ratios in paired processes ({measured.Count} of {pairs} pairs, {rounds} rounds, latents {string.Join(", ", latents)})");
        text.AppendLine();
        text.AppendLine("\"Before\": a process with huge pages off running stage 3 with the multi-op AdamW in the standard layout (the product "
            + "before the one-pass optimizer and the huge-page default). \"Now\": a process with huge pages on running stages 3 and 2 as the "
            + "trainer does. Medians of each process's steps (s); ratios between the two processes of a pair; forward = the no-grad "
            + "forward's rate as a share of the lower of the process's two float32 matmul rates.");
        text.AppendLine();
        text.AppendLine("| pair | first | latents | before: fwd / bwd / AdamW = step | stage 3 now: fwd / bwd / AdamW = step | stage 2 now | stage 3 now / before | AdamW now / before | stage 2 / stage 3 | forward (now) | forward (before) |");
        text.AppendLine("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|");
        var ratios = new Dictionary<int, List<(double Stage3, double AdamW, double Stage2, double Forward)>>();
        foreach (var (pair, first, before, now) in measured)
        {
            foreach (int latent in latents)
            {
                var b = before.Single(m => m.Latent == latent);
                var n = now.Single(m => m.Latent == latent);
                var (stage3, adamW, stage2) = StageRatios.Ratios(b, n);
                (ratios.TryGetValue(latent, out var list) ? list : ratios[latent] = []).Add((stage3, adamW, stage2, n.ForwardShareOfMatmul));
                text.AppendLine(c, $"| {pair} | {first.Name} | {latent}×{latent} | {Parts(b, StageRatios.BeforeName)} | {Parts(n, StageRatios.Stage3Name)} | "
                    + $"{StageRatios.Seconds(n.MedianStep(StageRatios.Stage2Name))} | "
                    + $"{stage3:F3} | {adamW:F3} | {stage2:F3} | {100 * n.ForwardShareOfMatmul:F0} % | {100 * b.ForwardShareOfMatmul:F0} % |");
            }
        }
        text.AppendLine();
        text.AppendLine("Against the issue's targets (every pair's value):");
        text.AppendLine();
        foreach (int latent in latents)
        {
            var r = ratios[latent];
            double stage3Target = latent <= 32 ? Stage3Target32 : Stage3Target64;
            text.AppendLine(c, $"- {latent}×{latent}: stage 3 now / before ≤ {stage3Target:F2}: {Verdict(r.Select(x => x.Stage3), v => v <= stage3Target, "F3")}; "
                + $"AdamW ≤ {AdamWTarget:F1}×: {Verdict(r.Select(x => x.AdamW), v => v <= AdamWTarget, "F3")}; "
                + $"stage 2 ≤ {Stage2Target:F1}× stage 3: {Verdict(r.Select(x => x.Stage2), v => v <= Stage2Target, "F3")}; "
                + $"forward ≥ {100 * ForwardTarget:F0} % of the matmul rate: {Verdict(r.Select(x => 100 * x.Forward), v => v >= 100 * ForwardTarget, "F0", " %")}.");
        }
        return text.ToString();
    }

    private static string Parts(StageRatios.Measurement m, string variant) =>
        $"{StageRatios.Seconds(m.MedianPart(variant, t => t.Forward))} / {StageRatios.Seconds(m.MedianPart(variant, t => t.Backward))} / "
        + $"{StageRatios.Seconds(m.MedianPart(variant, t => t.Optimizer))} = {StageRatios.Seconds(m.MedianStep(variant))}";

    private static string Verdict(IEnumerable<double> values, Func<double, bool> meets, string format, string unit = "")
    {
        var list = values.ToList();
        int met = list.Count(meets);
        string which = met == list.Count ? "**met**" : met == 0 ? "**missed**" : $"**met in {met} of {list.Count}**";
        return $"{which} ({string.Join(", ", list.Select(v => v.ToString(format, CultureInfo.InvariantCulture) + unit))})";
    }
}
