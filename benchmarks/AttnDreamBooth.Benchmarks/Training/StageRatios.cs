using System.Diagnostics;
using System.Globalization;
using System.Text;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// The issue's speed ratios measured side by side in one process on the real-size SD 2.1-base U-Net: stage 3 with the
/// original multi-op AdamW update (the step as it was before the one-pass optimizer), stage 3 as the trainer runs it now,
/// and stage 2, taking turns step by step on one model (the stages' parameter rule <see cref="StageParameters"/>, their
/// optimizers from <see cref="StageOptimizer.Create"/> with <see cref="StagePlan.Paper"/>'s settings, float32, no
/// checkpointing, the map recorder on every attn2 layer); and the no-grad forward's rate against a float32 matmul's,
/// measured in the same process before and after. Not a BenchmarkDotNet job:
/// <c>dotnet run -c Release -- stage-ratios [--latents 32,64] [--rounds 3] [--out file.md]</c>.
/// </summary>
internal static class StageRatios
{
    public const string Command = "stage-ratios";
    private const int MatmulSide = 3072;

    /// <param name="Standard">Runs in the standard layout whatever the run's layout (the step as it was).</param>
    private sealed record Variant(string Name, TrainingStage Stage, AdamWUpdatePath Path, bool Standard);

    private static readonly Variant[] Variants =
    [
        new("stage 3, multi-op AdamW, standard layout (before)", TrainingStage.UNet, AdamWUpdatePath.MultiOp, Standard: true),
        new("stage 3 (now)", TrainingStage.UNet, AdamWUpdatePath.OnePass, Standard: false),
        new("stage 2 (now)", TrainingStage.CrossAttention, AdamWUpdatePath.OnePass, Standard: false),
    ];

    public static int Run(string[] args)
    {
        var options = CommandOptions.Parse(args, Command, "[--latents 32,64] [--rounds 3] [--layout standard|channels-last] [--out file.md]",
            "--latents", "--rounds", "--layout", "--out");
        if (options is null) return 2;
        int[] latents = options.Integers("--latents") ?? [32, 64];
        int rounds = options.Integer("--rounds") ?? 3;
        string? output = options.Text("--out");
        string layout = options.Text("--layout") ?? "standard";
        if (layout is not ("standard" or "channels-last"))
        {
            Console.Error.WriteLine($"--layout must be standard or channels-last, not '{layout}'.");
            return 2;
        }
        var report = new StringBuilder();
        foreach (int latent in latents)
        {
            report.Append(Measure(latent, rounds, layout == "channels-last"));
            Console.WriteLine(report.ToString());
            // Written after every size, so a stopped sweep keeps what it measured.
            if (output is not null) File.WriteAllText(output, report.ToString());
        }
        return 0;
    }

    private static string Measure(int latent, int rounds, bool channelsLast)
    {
        string loadBefore = RealSizeUNet.LoadAverage();
        double matmulBefore = MatmulRate();
        using var net = RealSizeUNet.Create(latent);
        double forwardGflop = ForwardFlops(net) / 1e9;
        // The trainer's layout option (TrainingOptions.ChannelsLast), before the optimizers exist, so that the moments take
        // the weights' layout as in training; the "before" variant lays the weights back for its own step (its multi-op
        // update works on any layout).
        if (channelsLast) ChannelsLastLayout.Apply(net.Model);
        var inference = new List<double>();
        for (int i = 0; i <= rounds; i++)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var clock = Stopwatch.StartNew();
            net.Model.call(net.Latents, net.Timestep, net.Text);
            if (i > 0) inference.Add(clock.Elapsed.TotalSeconds); // the first is a warm-up
        }

        var named = net.Model.named_parameters().Select(p => (p.name, p.parameter)).ToArray();
        var training = new TrainingOptions();
        var optimizers = new Dictionary<TrainingStage, (AdamWOptimizer Optimizer, Parameter[] Trainable, StageOptions Settings)>();
        foreach (var stage in Variants.Select(v => v.Stage).Distinct())
        {
            var trainable = StageParameters.Select(stage, named);
            var settings = StagePlan.Paper[stage];
            optimizers[stage] = (StageOptimizer.Create(trainable, settings, training), trainable.Select(p => p.Parameter).ToArray(), settings);
        }
        using var store = new AttentionMapStore();
        using var session = net.Model.Attach(store, AttentionTokenSelection.Positions(5, 6));
        var times = Variants.ToDictionary(v => v.Name, _ => new List<(double Forward, double Backward, double Optimizer)>());
        try
        {
            // Warm-up, last variant first: stage 3 "now" allocates the moments in the run's layout before "before" steps.
            foreach (var v in Variants.Reverse()) Step(net, store, v, optimizers[v.Stage]);
            for (int round = 0; round < rounds; round++)
            {
                foreach (var v in Variants) times[v.Name].Add(Step(net, store, v, optimizers[v.Stage]));
                Console.Error.WriteLine($"{latent}x{latent}: round {round + 1}/{rounds}: " + string.Join(", ", Variants.Select(v =>
                    $"{v.Name} {Seconds(times[v.Name][^1].Forward)}+{Seconds(times[v.Name][^1].Backward)}+{Seconds(times[v.Name][^1].Optimizer)} s"))
                    + $" (load {RealSizeUNet.LoadAverage()})");
            }
        }
        finally
        {
            foreach (var (optimizer, _, _) in optimizers.Values) optimizer.Dispose();
        }
        double matmulAfter = MatmulRate();
        return Report(latent, rounds, channelsLast, loadBefore, matmulBefore, matmulAfter, forwardGflop, inference, times);
    }

    /// <summary>One step of <paramref name="v"/>'s stage, as the trainer runs it: the stage's parameters require a gradient
    /// and the rest do not, forward + loss, backward, the stage's clipping, AdamW, gradients dropped.</summary>
    private static (double Forward, double Backward, double Optimizer) Step(RealSizeUNet net, AttentionMapStore store, Variant v,
        (AdamWOptimizer Optimizer, Parameter[] Trainable, StageOptions Settings) stage)
    {
        StageParameters.Freeze(v.Stage, net.Model.named_parameters().Select(p => (p.name, p.parameter)));
        bool relaid = v.Standard && ChannelsLastLayout.Undo(net.Model) > 0;
        try
        {
            return TimedStep(net, store, v, stage);
        }
        finally
        {
            if (relaid) ChannelsLastLayout.Apply(net.Model);
        }
    }

    private static (double Forward, double Backward, double Optimizer) TimedStep(RealSizeUNet net, AttentionMapStore store, Variant v,
        (AdamWOptimizer Optimizer, Parameter[] Trainable, StageOptions Settings) stage)
    {
        stage.Optimizer.UpdatePath = v.Path;
        using var scope = NewDisposeScope();
        var clock = Stopwatch.StartNew();
        var loss = TrainingStepRig.Loss(net.Model, store, net.Latents, net.Timestep, net.Text, net.Target);
        double forward = clock.Elapsed.TotalSeconds;
        loss.backward();
        double backward = clock.Elapsed.TotalSeconds - forward;
        StageOptimizer.ClipGradients(stage.Trainable, stage.Settings);
        stage.Optimizer.Step();
        stage.Optimizer.ZeroGrad();
        store.Clear();
        return (forward, backward, clock.Elapsed.TotalSeconds - forward - backward);
    }

    /// <summary>GFLOP/s of a float32 <c>mm</c> of two square matrices (median of 7 after a warm-up), with libtorch's
    /// threads as the U-Net uses them.</summary>
    private static double MatmulRate()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(3);
        var a = randn([MatmulSide, MatmulSide], generator: g);
        var b = randn([MatmulSide, MatmulSide], generator: g);
        var seconds = new List<double>();
        for (int i = 0; i < 8; i++)
        {
            var clock = Stopwatch.StartNew();
            using (var c = a.mm(b)) { }
            if (i > 0) seconds.Add(clock.Elapsed.TotalSeconds);
        }
        return 2.0 * MatmulSide * MatmulSide * MatmulSide / RealSizeUNet.Median(seconds) / 1e9;
    }

    /// <summary>Multiply-add FLOPs (2 per multiply-add) of one forward, counted from the shapes every Conv2d and Linear sees
    /// in a real no-grad forward, plus the attention kernels' two products (4·L·S·inner per attention: queries from
    /// <c>to_q</c>'s input, keys from <c>to_k</c>'s). Norms, activations and adds are left out (a few percent).</summary>
    private static double ForwardFlops(RealSizeUNet net)
    {
        double flops = 0;
        var queries = new Dictionary<string, (long Batch, long Length, long Inner)>(StringComparer.Ordinal);
        var keys = new Dictionary<string, long>(StringComparer.Ordinal);
        var removers = new List<Action>();
        foreach (var (name, module) in net.Model.named_modules())
        {
            if (module is Conv2d conv)
            {
                var weight = conv.weight!;
                long perOutput = weight.shape[1] * weight.shape[2] * weight.shape[3];
                removers.Add(conv.register_forward_hook((_, _, y) => { flops += 2.0 * y.numel() * perOutput; return y; }).remove);
            }
            else if (module is Linear linear)
            {
                long inFeatures = linear.weight!.shape[1], outFeatures = linear.weight.shape[0];
                string path = name;
                removers.Add(linear.register_forward_hook((_, x, y) =>
                {
                    flops += 2.0 * y.numel() * inFeatures;
                    if (path.EndsWith(".to_q", StringComparison.Ordinal)) queries[path[..^5]] = (x.shape[0], x.shape[1], outFeatures);
                    if (path.EndsWith(".to_k", StringComparison.Ordinal)) keys[path[..^5]] = x.shape[1];
                    return y;
                }).remove);
            }
        }
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            net.Model.call(net.Latents, net.Timestep, net.Text);
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        foreach (var (attention, q) in queries) flops += 4.0 * q.Batch * q.Length * keys[attention] * q.Inner;
        return flops;
    }

    private static string Report(int latent, int rounds, bool channelsLast, string loadBefore, double matmulBefore, double matmulAfter, double forwardGflop,
        List<double> inference, Dictionary<string, List<(double Forward, double Backward, double Optimizer)>> times)
    {
        static double Median(IEnumerable<double> values) => RealSizeUNet.Median(values);
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine();
        text.AppendLine(c, $"### {latent}×{latent} latents, {rounds} rounds, {(channelsLast ? "channels-last" : "standard")} layout");
        text.AppendLine();
        text.AppendLine(c, $"Load average before / after: {loadBefore} / {RealSizeUNet.LoadAverage()}; libtorch threads {get_num_threads()}; huge pages {RealSizeUNet.HugePagesSetting()}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC at the end.");
        text.AppendLine();
        double forward = Median(inference);
        double matmul = Math.Min(matmulBefore, matmulAfter);
        text.AppendLine(c, $"Forward (no grad, {(channelsLast ? "channels-last" : "standard")} layout): {forwardGflop:F1} GFLOP counted, median {forward:F2} s of {string.Join(", ", inference.Select(Seconds))} s "
            + $"= {forwardGflop / forward:F1} GFLOP/s; float32 {MatmulSide}² matmul {matmulBefore:F1} GFLOP/s before, {matmulAfter:F1} after "
            + $"→ forward at **{100 * forwardGflop / forward / matmul:F0} %** of the lower matmul rate ({100 * forwardGflop / forward / Math.Max(matmulBefore, matmulAfter):F0} % of the higher).");
        text.AppendLine();
        text.AppendLine("| step | forward s | backward s | clip + AdamW s | step s (median) | every step (s) |");
        text.AppendLine("|---|---:|---:|---:|---:|---|");
        var totals = new Dictionary<string, double>();
        foreach (var (name, list) in times)
        {
            totals[name] = Median(list.Select(s => s.Forward + s.Backward + s.Optimizer));
            text.AppendLine(c, $"| {name} | {Seconds(Median(list.Select(s => s.Forward)))} | {Seconds(Median(list.Select(s => s.Backward)))} | "
                + $"{Seconds(Median(list.Select(s => s.Optimizer)))} | {Seconds(totals[name])} | {string.Join(", ", list.Select(s => Seconds(s.Forward + s.Backward + s.Optimizer)))} |");
        }
        text.AppendLine();
        var before = times[Variants[0].Name];
        var now = times[Variants[1].Name];
        text.AppendLine(c, $"Stage 3 now / before: **{totals[Variants[1].Name] / totals[Variants[0].Name]:F3}** by medians "
            + $"(per round: {string.Join(", ", now.Zip(before, (n, b) => ((n.Forward + n.Backward + n.Optimizer) / (b.Forward + b.Backward + b.Optimizer)).ToString("F3", c)))}); "
            + $"AdamW alone now / before: **{Median(now.Select(s => s.Optimizer)) / Median(before.Select(s => s.Optimizer)):F3}**. "
            + $"Stage 2 / stage 3 now: **{totals[Variants[2].Name] / totals[Variants[1].Name]:F3}**.");
        return text.ToString();
    }

    private static string Seconds(double s) => s.ToString("F2", CultureInfo.InvariantCulture);
}
