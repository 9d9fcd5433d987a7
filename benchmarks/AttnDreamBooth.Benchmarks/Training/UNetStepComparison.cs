using System.Globalization;
using System.Text;
using AttnDreamBooth.Models.Blocks;
using AttnDreamBooth.Training;
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

    // "channels-last" is the library's own layout change (TrainingOptions.ChannelsLast: the convolution weights and their
    // gradient buffers get NHWC strides); the "-input" variants also or only lay the sample out so. The other variants
    // flip the library's ExecutionSwitches, alternatives to diffusers' op order that measured no faster.
    private static readonly Variant[] All =
    [
        new("baseline", _ => { }, _ => { }),
        new("channels-last", n => ChannelsLastLayout.Apply(n.Model), n => ChannelsLastLayout.Undo(n.Model)),
        new("channels-last-input", _ => { }, _ => { }, n => ChannelsLastLayout.ToChannelsLast(n.Latents)),
        new("channels-last-both", n => ChannelsLastLayout.Apply(n.Model), n => ChannelsLastLayout.Undo(n.Model), n => ChannelsLastLayout.ToChannelsLast(n.Latents)),
        new("in-place-resnet", _ => ExecutionSwitches.InPlaceResnet = true, _ => ExecutionSwitches.InPlaceResnet = false),
        new("in-place-adds", _ => ExecutionSwitches.InPlaceTransformerAdds = true, _ => ExecutionSwitches.InPlaceTransformerAdds = false),
        new("output-view", _ => ExecutionSwitches.TransformerOutputAsView = true, _ => ExecutionSwitches.TransformerOutputAsView = false),
        new("in-place-all", _ => InPlace(true), _ => InPlace(false)),
        new("matmul-conv-64", _ => ExecutionSwitches.MatmulConvolutionMaxPixels = 64, _ => ExecutionSwitches.MatmulConvolutionMaxPixels = 0),
        new("matmul-conv-256", _ => ExecutionSwitches.MatmulConvolutionMaxPixels = 256, _ => ExecutionSwitches.MatmulConvolutionMaxPixels = 0),
        new("matmul-conv-1024", _ => ExecutionSwitches.MatmulConvolutionMaxPixels = 1024, _ => ExecutionSwitches.MatmulConvolutionMaxPixels = 0),
    ];

    private static void InPlace(bool on)
    {
        ExecutionSwitches.InPlaceResnet = on;
        ExecutionSwitches.InPlaceTransformerAdds = on;
    }

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
        float scale = float.NaN;
        var gradients = new Dictionary<string, string>();
        Tensor[]? referenceGradients = null;
        foreach (var v in variants)
        {
            v.On(net);
            try
            {
                using (no_grad())
                {
                    var prediction = net.Model.call(v.Sample?.Invoke(net) ?? net.Latents, net.Timestep, net.Text).contiguous();
                    if (reference is null)
                    {
                        reference = prediction;
                        scale = prediction.abs().max().item<float>();
                    }
                    differences[v.Name] = (prediction - reference).abs().max().item<float>().ToString("G3", CultureInfo.InvariantCulture);
                }
                net.Step(v.Sample?.Invoke(net)); // warm-up in this variant, and the gradients to compare
                gradients[v.Name] = CompareGradients(net, ref referenceGradients);
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
        foreach (var g in referenceGradients ?? []) g.Dispose();
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
        text.AppendLine(CultureInfo.InvariantCulture, $"Load average before / after: {loadBefore} / {RealSizeUNet.LoadAverage()}; libtorch threads {get_num_threads()}; huge pages {RealSizeUNet.HugePagesSetting()}; the baseline's prediction has max |value| {scale.ToString("G3", CultureInfo.InvariantCulture)} (the scale of the |Δ| column).");
        text.AppendLine();
        text.AppendLine("| variant | prediction max \\|Δ\\| vs baseline | gradients: max relative Δ | forward ms (median) | backward ms (median) | fwd+bwd vs first variant | every step (fwd+bwd ms) |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---|");
        double? first = null;
        foreach (var v in variants)
        {
            if (!times.TryGetValue(v.Name, out var list))
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {v.Name} | {differences[v.Name]} | | | | | |");
                continue;
            }
            double f = RealSizeUNet.Median(list.Select(s => s.Forward)), b = RealSizeUNet.Median(list.Select(s => s.Backward));
            double total = RealSizeUNet.Median(list.Select(s => s.Forward + s.Backward));
            first ??= total;
            text.AppendLine(CultureInfo.InvariantCulture, $"| {v.Name} | {differences[v.Name]} | {gradients[v.Name]} | {RealSizeUNet.Ms(f)} | {RealSizeUNet.Ms(b)} | "
                + $"{(total / first.Value).ToString("F3", CultureInfo.InvariantCulture)} | {string.Join(", ", list.Select(s => RealSizeUNet.Ms(s.Forward + s.Backward)))} |");
        }
        return text.ToString();
    }

    /// <summary>The largest ‖g − g_baseline‖ / ‖g_baseline‖ over the parameters after a variant's step (the first call keeps
    /// the baseline's gradients): a layout or kernel change must leave the gradients as they were, not only the
    /// prediction.</summary>
    private static string CompareGradients(RealSizeUNet net, ref Tensor[]? reference)
    {
        using var scope = NewDisposeScope();
        var grads = net.Model.parameters().Select(p => p.grad).ToArray();
        if (reference is null)
        {
            reference = grads.Select(g => g!.detach().contiguous().clone().DetachFromDisposeScope()).ToArray();
            return "0";
        }
        double worst = 0;
        for (int i = 0; i < grads.Length; i++)
        {
            double norm = reference[i].norm().item<float>();
            double delta = (grads[i]! - reference[i]).norm().item<float>();
            worst = Math.Max(worst, norm > 0 ? delta / norm : delta);
        }
        return worst.ToString("G3", CultureInfo.InvariantCulture);
    }
}
