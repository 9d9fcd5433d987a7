using System.Globalization;
using System.Text;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// Side-by-side forward/backward times of the real-size U-Net's stage-3 step under alternatives, in one process: the
/// variants take turns step by step (A, B, C, A, B, C, …) so that load changes on the shared machine hit all of them.
/// Each variant's prediction is compared against the baseline's (max |Δ|) before timing. Not a BenchmarkDotNet job:
/// <c>dotnet run -c Release -- unet-ab [--latents 32] [--rounds 4] [--variants baseline,channels-last] [--out file.md]</c>.
/// </summary>
internal static class UNetStepComparison
{
    public const string Command = "unet-ab";

    /// <summary>An alternative: what to switch on before its step and off after it, and the sample it feeds.</summary>
    private sealed record Variant(string Name, Action<RealSizeUNet> On, Action<RealSizeUNet> Off, Func<RealSizeUNet, Tensor>? Sample = null);

    // Channels-last is applied from outside the model: the convolution weights (and their gradient buffers, so that
    // accumulation keeps one layout) and the sample get NHWC strides, and libtorch's CPU kernels carry the layout on.
    // Changes inside the library's modules are compared by adding a variant here around a switch while experimenting.
    private static readonly Variant[] All =
    [
        new("baseline", _ => { }, _ => { }),
        new("channels-last", n => ConvWeights(n, ChannelsLast), n => ConvWeights(n, t => t.contiguous()), n => ChannelsLast(n.Latents)),
    ];

    public static int Run(string[] args)
    {
        var options = CommandOptions.Parse(args, Command, $"[--latents 32] [--rounds 4] [--variants {string.Join(',', All.Select(v => v.Name))}] [--out file.md]",
            "--latents", "--rounds", "--variants", "--out");
        if (options is null) return 2;
        int[] latents = options.Integers("--latents") ?? [32];
        int rounds = options.Integer("--rounds") ?? 4;
        string[] names = options.List("--variants") ?? All.Select(v => v.Name).ToArray();
        string? output = options.Text("--out");
        var variants = names.Select(n => All.Single(v => v.Name == n)).ToArray();
        var report = new StringBuilder();
        foreach (int latent in latents)
        {
            report.Append(Compare(latent, rounds, variants));
            Console.WriteLine(report.ToString());
        }
        if (output is not null) File.WriteAllText(output, report.ToString());
        return 0;
    }

    private static string Compare(int latent, int rounds, Variant[] variants)
    {
        string loadBefore = RealSizeUNet.LoadAverage();
        using var net = RealSizeUNet.Create(latent);
        net.Step();
        var differences = new Dictionary<string, string>();
        Tensor? reference = null;
        foreach (var v in variants)
        {
            v.On(net);
            try
            {
                using (no_grad())
                {
                    var prediction = net.Model.call(v.Sample?.Invoke(net) ?? net.Latents, net.Timestep, net.Text).contiguous();
                    reference ??= prediction;
                    differences[v.Name] = (prediction - reference).abs().max().item<float>().ToString("G3", CultureInfo.InvariantCulture);
                }
                net.Step(v.Sample?.Invoke(net)); // warm-up in this variant
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                differences[v.Name] = "fails: " + ex.Message.Split('\n')[0];
            }
            finally
            {
                v.Off(net);
            }
        }
        var usable = variants.Where(v => !differences[v.Name].StartsWith("fails", StringComparison.Ordinal)).ToArray();
        var times = usable.ToDictionary(v => v.Name, _ => new List<(double Forward, double Backward)>());
        for (int round = 0; round < rounds; round++)
        {
            foreach (var v in usable)
            {
                v.On(net);
                try
                {
                    times[v.Name].Add(net.Step(v.Sample?.Invoke(net)));
                }
                finally
                {
                    v.Off(net);
                }
            }
            Console.Error.WriteLine($"{latent}x{latent}: round {round + 1}/{rounds}: " + string.Join(", ", usable.Select(v =>
                $"{v.Name} {RealSizeUNet.Ms(times[v.Name][^1].Forward)}+{RealSizeUNet.Ms(times[v.Name][^1].Backward)}")) + $" (load {RealSizeUNet.LoadAverage()})");
        }
        var text = new StringBuilder();
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"### {latent}×{latent} latents, {rounds} rounds");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Load average before / after: {loadBefore} / {RealSizeUNet.LoadAverage()}; libtorch threads {get_num_threads()}.");
        text.AppendLine();
        text.AppendLine("| variant | prediction max \\|Δ\\| vs baseline | forward ms (median) | backward ms (median) | fwd+bwd vs first variant | every step (fwd+bwd ms) |");
        text.AppendLine("|---|---:|---:|---:|---:|---|");
        double? first = null;
        foreach (var v in variants)
        {
            if (!times.TryGetValue(v.Name, out var list))
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {v.Name} | {differences[v.Name]} | | | | |");
                continue;
            }
            double f = RealSizeUNet.Median(list.Select(s => s.Forward)), b = RealSizeUNet.Median(list.Select(s => s.Backward));
            double total = RealSizeUNet.Median(list.Select(s => s.Forward + s.Backward));
            first ??= total;
            text.AppendLine(CultureInfo.InvariantCulture, $"| {v.Name} | {differences[v.Name]} | {RealSizeUNet.Ms(f)} | {RealSizeUNet.Ms(b)} | "
                + $"{(total / first.Value).ToString("F3", CultureInfo.InvariantCulture)} | {string.Join(", ", list.Select(s => RealSizeUNet.Ms(s.Forward + s.Backward)))} |");
        }
        return text.ToString();
    }

    /// <summary>A 4-D tensor with channels-last strides (NHWC in memory, NCHW in shape), which libtorch's CPU convolution,
    /// group norm and elementwise kernels keep. TorchSharp has no memory-format argument; the strides say it.</summary>
    private static Tensor ChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static void ConvWeights(RealSizeUNet net, Func<Tensor, Tensor> layout)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var conv in net.Model.modules().OfType<Conv2d>())
        {
            var w = conv.weight!;
            w.set_(layout(w));
            if (w.grad is { } grad) grad.set_(layout(grad));
        }
    }
}
