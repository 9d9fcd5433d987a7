using System.Diagnostics;
using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// Where a stage-3 training step of the real-size U-Net spends its time, per module and per op kind, forward and backward.
/// Each leaf module (conv, linear, group/layer norm) and each parameter-free op between them (SiLU, the GEGLU gate, the
/// attention kernel, residual adds and layout copies, skip concatenation, nearest upsampling) is run in isolation on
/// the input it received during a real forward, with its parameters and inputs requiring gradients as in stage 3, and
/// its backward is driven by a random output gradient. Rounds of "one whole step, then every unit once" alternate, so
/// load changes hit both; the medians are reported, and the units' sum against the whole step (coverage) says how much
/// of the step the table explains. Not a BenchmarkDotNet job:
/// <c>dotnet run -c Release -- unet-profile [--latents 32,64] [--rounds 3] [--out file.md]</c>.
/// </summary>
internal static class UNetStepProfile
{
    public const string Command = "unet-profile";

    public static int Run(string[] args)
    {
        var options = CommandOptions.Parse(args, Command, "[--latents 32,64] [--rounds 3] [--out file.md]", "--latents", "--rounds", "--out");
        if (options is null) return 2;
        int[] latents = options.Integers("--latents") ?? [32, 64];
        int rounds = options.Integer("--rounds") ?? 3;
        string? output = options.Text("--out");
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"libtorch threads: {get_num_threads()}; huge pages {RealSizeUNet.HugePagesSetting()}; rounds: {rounds}; {Environment.ProcessorCount} logical CPUs.");
        foreach (int latent in latents)
        {
            report.Append(Profile(latent, rounds));
            Console.WriteLine(report.ToString());
        }
        if (output is not null) File.WriteAllText(output, report.ToString());
        return 0;
    }

    private static string Profile(int latent, int rounds)
    {
        string loadBefore = RealSizeUNet.LoadAverage();
        using var net = RealSizeUNet.Create(latent);
        net.Step(); // allocates the gradients, as a training run keeps them
        var units = ProfileUnits.Capture(net);
        var steps = new List<(double Forward, double Backward)>();
        var times = units.ToDictionary(u => u, _ => (Forward: new List<double>(), Backward: new List<double>()));
        for (int round = 0; round < rounds; round++)
        {
            steps.Add(net.Step());
            foreach (var unit in units)
            {
                var (f, b) = Time(unit);
                times[unit].Forward.Add(f);
                times[unit].Backward.Add(b);
            }
            Console.Error.WriteLine($"{latent}x{latent}: round {round + 1}/{rounds} done (step {RealSizeUNet.Ms(steps[^1].Forward)} + {RealSizeUNet.Ms(steps[^1].Backward)} ms, load {RealSizeUNet.LoadAverage()})");
        }
        string loadAfter = RealSizeUNet.LoadAverage();
        double stepForward = RealSizeUNet.Median(steps.Select(s => s.Forward)), stepBackward = RealSizeUNet.Median(steps.Select(s => s.Backward));
        var rows = units.Select(u => (Unit: u, Forward: RealSizeUNet.Median(times[u].Forward), Backward: RealSizeUNet.Median(times[u].Backward))).ToArray();
        double sumForward = rows.Sum(r => r.Forward), sumBackward = rows.Sum(r => r.Backward);

        var text = new StringBuilder();
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"### {latent}×{latent} latents");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Load average before / after: {loadBefore} / {loadAfter}. Whole step (median of {rounds}): forward {RealSizeUNet.Ms(stepForward)} ms, backward {RealSizeUNet.Ms(stepBackward)} ms "
            + $"(each: {string.Join(", ", steps.Select(s => RealSizeUNet.Ms(s.Forward) + " + " + RealSizeUNet.Ms(s.Backward)))}).");
        text.AppendLine(CultureInfo.InvariantCulture, $"Coverage — the {units.Count} units timed in isolation sum to forward {RealSizeUNet.Ms(sumForward)} ms ({RealSizeUNet.Percent(sumForward, stepForward)} of the step's), "
            + $"backward {RealSizeUNet.Ms(sumBackward)} ms ({RealSizeUNet.Percent(sumBackward, stepBackward)}).");
        AppendTable(text, "Top 10 modules by forward time", Group(rows, r => r.Unit.Module), byBackward: false, stepForward, stepBackward);
        AppendTable(text, "Top 10 modules by backward time", Group(rows, r => r.Unit.Module), byBackward: true, stepForward, stepBackward);
        AppendTable(text, "Top 10 op kinds by forward time", Group(rows, r => r.Unit.Kind), byBackward: false, stepForward, stepBackward);
        AppendTable(text, "Top 10 op kinds by backward time", Group(rows, r => r.Unit.Kind), byBackward: true, stepForward, stepBackward);
        AppendTable(text, "All op kinds", Group(rows, r => r.Unit.Kind), byBackward: true, stepForward, stepBackward, top: int.MaxValue);
        return text.ToString();
    }

    private static (string Name, int Count, double Forward, double Backward)[] Group(
        IEnumerable<(ProfileUnit Unit, double Forward, double Backward)> rows, Func<(ProfileUnit Unit, double Forward, double Backward), string> key) =>
        rows.GroupBy(key).Select(g => (g.Key, g.Count(), g.Sum(r => r.Forward), g.Sum(r => r.Backward))).ToArray();

    private static void AppendTable(StringBuilder text, string title, (string Name, int Count, double Forward, double Backward)[] groups, bool byBackward,
        double stepForward, double stepBackward, int top = 10)
    {
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"{title}:");
        text.AppendLine();
        text.AppendLine("| | units | forward ms | % of step forward | backward ms | % of step backward | % of step (fwd+bwd) |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var g in groups.OrderByDescending(g => byBackward ? g.Backward : g.Forward).Take(top))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {g.Name} | {g.Count} | {RealSizeUNet.Ms(g.Forward)} | {RealSizeUNet.Percent(g.Forward, stepForward)} | "
                + $"{RealSizeUNet.Ms(g.Backward)} | {RealSizeUNet.Percent(g.Backward, stepBackward)} | {RealSizeUNet.Percent(g.Forward + g.Backward, stepForward + stepBackward)} |");
        }
    }

    private static (double Forward, double Backward) Time(ProfileUnit unit)
    {
        using var scope = NewDisposeScope();
        var watch = Stopwatch.StartNew();
        var output = unit.Forward();
        double forward = watch.Elapsed.TotalMilliseconds;
        var gradient = randn_like(output);
        watch.Restart();
        output.backward([gradient]);
        return (forward, watch.Elapsed.TotalMilliseconds);
    }
}
