using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AttnDreamBooth.IO;
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
/// With <c>--pairs N</c> it compares the product as it was with the product as it is, which one process cannot do
/// (libtorch reads its huge-page switch once): N pairs of child processes, one "before" (huge pages off, multi-op AdamW)
/// and one "now" (huge pages on, the stages as the trainer runs them), their order alternating from pair to pair, each
/// pair's ratios taken between its two processes (<see cref="PairedProcesses"/>).
/// </summary>
internal static class StageRatios
{
    public const string Command = "stage-ratios";
    private const int MatmulSide = 3072;

    /// <param name="Standard">Runs in the standard layout whatever the run's layout (the step as it was).</param>
    /// <param name="Before">The step as it was before the one-pass optimizer (<c>--variants before</c>).</param>
    private sealed record Variant(string Name, TrainingStage Stage, AdamWUpdatePath Path, bool Standard, bool Before);

    internal const string BeforeName = "stage 3, multi-op AdamW, standard layout (before)";
    internal const string Stage3Name = "stage 3 (now)";
    internal const string Stage2Name = "stage 2 (now)";

    private static readonly Variant[] Variants =
    [
        new(BeforeName, TrainingStage.UNet, AdamWUpdatePath.MultiOp, Standard: true, Before: true),
        new(Stage3Name, TrainingStage.UNet, AdamWUpdatePath.OnePass, Standard: false, Before: false),
        new(Stage2Name, TrainingStage.CrossAttention, AdamWUpdatePath.OnePass, Standard: false, Before: false),
    ];

    /// <summary>One step's parts in seconds.</summary>
    internal sealed record StepTimes(double Forward, double Backward, double Optimizer)
    {
        public double Step => Forward + Backward + Optimizer;
    }

    /// <summary>What one process measured at one latent size (also the <c>--json</c> file's entries).</summary>
    internal sealed record Measurement(int Latent, int Rounds, bool ChannelsLast, string HugePages, string LoadBefore, string LoadAfter,
        double MatmulBefore, double MatmulAfter, double ForwardGflop, IReadOnlyList<double> Inference, IReadOnlyDictionary<string, List<StepTimes>> Times,
        DateTime EndUtc)
    {
        /// <summary>Images per step (1 unless <c>--batch</c> said otherwise).</summary>
        public int Batch { get; init; } = 1;

        public double ForwardShareOfMatmul => ForwardGflop / RealSizeUNet.Median(Inference) / Math.Min(MatmulBefore, MatmulAfter);

        public double MedianStep(string variant) => RealSizeUNet.Median(Times[variant].Select(t => t.Step));

        public double MedianPart(string variant, Func<StepTimes, double> part) => RealSizeUNet.Median(Times[variant].Select(part));
    }

    /// <summary>The issue's three step ratios by medians: stage 3 now over before, the AdamW update now over before, and
    /// stage 2 over stage 3 now — "before" and "now" measured in one process or in two.</summary>
    internal static (double Stage3, double AdamW, double Stage2) Ratios(Measurement before, Measurement now) =>
        (now.MedianStep(Stage3Name) / before.MedianStep(BeforeName),
         now.MedianPart(Stage3Name, t => t.Optimizer) / before.MedianPart(BeforeName, t => t.Optimizer),
         now.MedianStep(Stage2Name) / now.MedianStep(Stage3Name));

    public static int Run(string[] args)
    {
        var options = CommandOptions.Parse(args, Command,
            "[--latents 32,64] [--batch 1] [--rounds 3] [--layout standard|channels-last] [--variants all|before|now] [--pairs N] [--out file.md] [--json file.json]",
            "--latents", "--batch", "--rounds", "--layout", "--variants", "--pairs", "--out", "--json");
        if (options is null) return 2;
        int[] latents = options.Integers("--latents") ?? [32, 64];
        int rounds = options.Integer("--rounds") ?? 3;
        int batch = options.Integer("--batch") ?? 1;
        string? output = options.Text("--out");
        string? json = options.Text("--json");
        string layout = options.Text("--layout") ?? "standard";
        string which = options.Text("--variants") ?? "all";
        if (layout is not ("standard" or "channels-last"))
        {
            Console.Error.WriteLine($"--layout must be standard or channels-last, not '{layout}'.");
            return 2;
        }
        if (which is not ("all" or "before" or "now"))
        {
            Console.Error.WriteLine($"--variants must be all, before or now, not '{which}'.");
            return 2;
        }
        if (latents.Length == 0 || latents.Any(l => l is < 8 or > 128) || rounds is < 1 or > 50 || batch is < 1 or > 64)
        {
            Console.Error.WriteLine("--latents must be sides between 8 and 128, --batch between 1 and 64 and --rounds between 1 and 50.");
            return 2;
        }
        if (options.Integer("--pairs") is { } pairs)
        {
            if (pairs is < 1 or > 10 || which != "all" || layout != "standard" || json is not null || batch != 1)
            {
                Console.Error.WriteLine("--pairs takes 1 to 10 pairs and chooses the variants, layout and files of its processes itself (no --variants, --layout, --json or --batch).");
                return 2;
            }
            return PairedProcesses.Run(latents, rounds, pairs, output);
        }
        var chosen = Variants.Where(v => which == "all" || v.Before == (which == "before")).ToArray();
        var report = new StringBuilder();
        var measured = new List<Measurement>();
        foreach (int latent in latents)
        {
            var m = Measure(latent, batch, rounds, layout == "channels-last", chosen);
            measured.Add(m);
            report.Append(Report(m));
            Console.WriteLine(report.ToString());
            // Written after every size, so a stopped sweep keeps what it measured.
            if (output is not null) AtomicFile.WriteAllText(output, report.ToString());
            if (json is not null) AtomicFile.WriteAllText(json, JsonSerializer.Serialize(measured, JsonOptions));
        }
        return 0;
    }

    internal static JsonSerializerOptions JsonOptions { get; } = new() { WriteIndented = true };

    private static Measurement Measure(int latent, int batch, int rounds, bool channelsLast, Variant[] variants)
    {
        string loadBefore = RealSizeUNet.LoadAverage();
        double matmulBefore = MatmulRate();
        using var net = RealSizeUNet.Create(latent, batch);
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
        foreach (var stage in variants.Select(v => v.Stage).Distinct())
        {
            var trainable = StageParameters.Select(stage, named);
            var settings = StagePlan.Paper[stage];
            optimizers[stage] = (StageOptimizer.Create(trainable, settings, training), trainable.Select(p => p.Parameter).ToArray(), settings);
        }
        using var store = new AttentionMapStore();
        using var session = net.Model.Attach(store, AttentionTokenSelection.Positions(5, 6));
        var times = variants.ToDictionary(v => v.Name, _ => new List<StepTimes>());
        try
        {
            // Warm-up, last variant first: stage 3 "now" allocates the moments in the run's layout before "before" steps.
            foreach (var v in variants.Reverse()) Step(net, store, v, optimizers[v.Stage]);
            for (int round = 0; round < rounds; round++)
            {
                foreach (var v in variants) times[v.Name].Add(Step(net, store, v, optimizers[v.Stage]));
                Console.Error.WriteLine($"{latent}x{latent}: round {round + 1}/{rounds}: " + string.Join(", ", variants.Select(v =>
                    $"{v.Name} {Seconds(times[v.Name][^1].Forward)}+{Seconds(times[v.Name][^1].Backward)}+{Seconds(times[v.Name][^1].Optimizer)} s"))
                    + $" (load {RealSizeUNet.LoadAverage()})");
            }
        }
        finally
        {
            foreach (var (optimizer, _, _) in optimizers.Values) optimizer.Dispose();
        }
        double matmulAfter = MatmulRate();
        return new Measurement(latent, rounds, channelsLast, RealSizeUNet.HugePagesSetting(), loadBefore, RealSizeUNet.LoadAverage(), matmulBefore, matmulAfter,
            forwardGflop, inference, times, DateTime.UtcNow) { Batch = batch };
    }

    /// <summary>One step of <paramref name="v"/>'s stage, as the trainer runs it: the stage's parameters require a gradient
    /// and the rest do not, forward + loss, backward, the stage's clipping, AdamW, gradients dropped.</summary>
    private static StepTimes Step(RealSizeUNet net, AttentionMapStore store, Variant v,
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

    private static StepTimes TimedStep(RealSizeUNet net, AttentionMapStore store, Variant v,
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
        return new StepTimes(forward, backward, clock.Elapsed.TotalSeconds - forward - backward);
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

    private static string Report(Measurement m)
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        string layout = m.ChannelsLast ? "channels-last" : "standard";
        text.AppendLine();
        text.AppendLine(c, $"### {m.Latent}×{m.Latent} latents, {m.Rounds} rounds, {layout} layout{(m.Batch == 1 ? "" : $", batch {m.Batch}")}");
        text.AppendLine();
        text.AppendLine(c, $"Load average before / after: {m.LoadBefore} / {m.LoadAfter}; libtorch threads {get_num_threads()}; huge pages {m.HugePages}; {m.EndUtc:yyyy-MM-dd HH:mm} UTC at the end; U-Net config {RealSizeUNet.ConfigPath}.");
        text.AppendLine();
        double forward = RealSizeUNet.Median(m.Inference);
        text.AppendLine(c, $"Forward (no grad, {layout} layout): {m.ForwardGflop:F1} GFLOP counted, median {forward:F2} s of {string.Join(", ", m.Inference.Select(Seconds))} s "
            + $"= {m.ForwardGflop / forward:F1} GFLOP/s; float32 {MatmulSide}² matmul {m.MatmulBefore:F1} GFLOP/s before, {m.MatmulAfter:F1} after "
            + $"→ forward at **{100 * m.ForwardShareOfMatmul:F0} %** of the lower matmul rate ({100 * m.ForwardGflop / forward / Math.Max(m.MatmulBefore, m.MatmulAfter):F0} % of the higher).");
        text.AppendLine();
        text.AppendLine("| step | forward s | backward s | clip + AdamW s | step s (median) | every step (s) |");
        text.AppendLine("|---|---:|---:|---:|---:|---|");
        foreach (var (name, list) in m.Times)
        {
            text.AppendLine(c, $"| {name} | {Seconds(m.MedianPart(name, t => t.Forward))} | {Seconds(m.MedianPart(name, t => t.Backward))} | "
                + $"{Seconds(m.MedianPart(name, t => t.Optimizer))} | {Seconds(m.MedianStep(name))} | {string.Join(", ", list.Select(t => Seconds(t.Step)))} |");
        }
        text.AppendLine();
        if (m.Times.Count == Variants.Length)
        {
            var (stage3, adamW, stage2) = Ratios(m, m);
            text.AppendLine(c, $"Stage 3 now / before: **{stage3:F3}** by medians "
                + $"(per round: {string.Join(", ", m.Times[Stage3Name].Zip(m.Times[BeforeName], (n, b) => (n.Step / b.Step).ToString("F3", c)))}); "
                + $"AdamW alone now / before: **{adamW:F3}**. Stage 2 / stage 3 now: **{stage2:F3}**.");
        }
        return text.ToString();
    }

    internal static string Seconds(double s) => s.ToString("F2", CultureInfo.InvariantCulture);
}
