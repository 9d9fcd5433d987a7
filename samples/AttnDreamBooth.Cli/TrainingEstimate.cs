using System.Diagnostics;
using System.Globalization;
using AttnDreamBooth.Pipelines;
using TorchSharp;

namespace AttnDreamBooth.Cli;

/// <summary>
/// What a training run will cost, said before it starts: the plan's steps × a per-step cost from the model's FLOP count
/// (<see cref="ModelFlops"/>) at the device's measured matrix-product rate, plus a per-layer overhead that dominates
/// small models. Stages 1 and 2 run forward and input gradients (≈ 2 forward passes: only the embedding row or the
/// cross-attention key/value projections get weight gradients), stage 3 also every weight gradient (≈ 3).
/// </summary>
internal sealed record TrainingEstimate
{
    /// <summary>U-Nets at least this large are real-size models (SD 1.x/2.x: 860 M); on a CPU they take hours.</summary>
    public const long RealSizeParameters = 100_000_000;

    /// <summary>Convolutions, attention and normalization reach about this share of a large matrix product's rate
    /// (calibrated on the Shapes model on the 2-core machine; see docs/getting-started.md, "How long things take").</summary>
    public const double ShareOfMatrixProductRate = 0.25;

    /// <summary>Dispatch and memory-bound work per weight tensor, image and pass (calibrated on the tiny model, where it
    /// is nearly all of the time).</summary>
    public static readonly TimeSpan OverheadPerLayerImagePass = TimeSpan.FromMicroseconds(120);

    public required long UNetParameters { get; init; }
    public required int UNetLayers { get; init; }
    public required int LatentHeight { get; init; }
    public required int LatentWidth { get; init; }
    public required double UNetForwardFlops { get; init; }
    public required double TextForwardFlops { get; init; }
    public required StagePlan Plan { get; init; }
    public required string Device { get; init; }
    public required bool OnCpu { get; init; }

    /// <summary>The device's rate on a large float32 matrix product, measured just before (so a busy machine shows).</summary>
    public required double MatrixProductFlopsPerSecond { get; init; }

    /// <summary>Forward passes' worth of work per image in a step of <paramref name="stage"/>.</summary>
    public static int Passes(TrainingStage stage) => stage == TrainingStage.UNet ? 3 : 2;

    public double StepFlops(TrainingStage stage) => Plan[stage].EffectiveBatchSize * Passes(stage) * (UNetForwardFlops + TextForwardFlops);

    public TimeSpan StepTime(TrainingStage stage) =>
        TimeSpan.FromSeconds(StepFlops(stage) / (MatrixProductFlopsPerSecond * ShareOfMatrixProductRate))
        + OverheadPerLayerImagePass * ((double)UNetLayers * Plan[stage].EffectiveBatchSize * Passes(stage));

    public TimeSpan Total => Plan.EnabledStages.Aggregate(TimeSpan.Zero, (sum, s) => sum + StepTime(s) * Plan[s].Steps);

    public double TotalFlops => Plan.EnabledStages.Sum(s => StepFlops(s) * Plan[s].Steps);

    /// <summary>From a loaded pipeline: its U-Net and text encoder weights at the training resolution.</summary>
    public static TrainingEstimate For(PersonalizationPipeline pipeline, StagePlan plan, string device)
    {
        var components = pipeline.Components;
        int latent = components.DefaultResolution / components.Vae.DownsampleFactor;
        var unet = components.UNet.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        var text = components.TextEncoder.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        return Create(unet, text, components.UNet.Config.BlockCount, latent, latent, plan, device,
            MeasureMatrixProductRate(components.Device));
    }

    /// <summary>From weight names and shapes (e.g. a model's state_dict_shapes.json) and a given device rate.</summary>
    public static TrainingEstimate Create(IReadOnlyCollection<(string Name, long[] Shape)> unet, IEnumerable<(string Name, long[] Shape)> textEncoder,
        int blockCount, int latentHeight, int latentWidth, StagePlan plan, string device, double matrixProductFlopsPerSecond) => new()
    {
        UNetParameters = unet.Sum(w => w.Shape.Aggregate(1L, (a, d) => a * d)),
        UNetLayers = unet.Count(w => w.Name.EndsWith(".weight", StringComparison.Ordinal)),
        LatentHeight = latentHeight,
        LatentWidth = latentWidth,
        UNetForwardFlops = ModelFlops.UNetForward(unet, blockCount, latentHeight, latentWidth),
        TextForwardFlops = ModelFlops.TextEncoderForward(textEncoder),
        Plan = plan,
        Device = device,
        OnCpu = device.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase),
        MatrixProductFlopsPerSecond = matrixProductFlopsPerSecond,
    };

    /// <summary>The lines printed before training: the estimate and how it was made.</summary>
    public IReadOnlyList<string> Describe()
    {
        string stages = string.Join(", ", Plan.EnabledStages.Select(s => $"{Plan[s].Steps} × batch {Plan[s].EffectiveBatchSize}"));
        return
        [
            $"Estimate: about {Duration(Total)} on {Device} for {Plan.TotalSteps} steps ({stages}), {Flops(TotalFlops)} in all.",
            $"  How: U-Net forward {Flops(UNetForwardFlops)} + text encoder {Flops(TextForwardFlops)} per image at {LatentHeight}×{LatentWidth} latents " +
            $"(counted from the layer shapes) × 2 passes (stages 1–2) or 3 (stage 3) × batch × steps, at {ShareOfMatrixProductRate * 100:F0} % of the " +
            $"{Flops(MatrixProductFlopsPerSecond)}/s this device just did on a matrix product, plus {OverheadPerLayerImagePass.TotalMicroseconds:F0} µs " +
            $"per layer, image and pass ({UNetLayers} layers). The progress bars' remaining time replaces it once steps run.",
        ];
    }

    /// <summary>The warning for a real-size model on the CPU, with what to do instead; null otherwise.</summary>
    public string? Warning()
    {
        if (!OnCpu || UNetParameters < RealSizeParameters) return null;
        return $"This is a real-size model ({UNetParameters / 1e6:F0} M U-Net parameters) on the CPU: training takes about {Duration(Total)}. " +
               "Train on a GPU (--device cuda), or for a quick try use the Shapes model (--model samples/models/shapes-sd, minutes on a CPU) " +
               "or fewer steps (--steps 10,10,20 --batch-size 1).";
    }

    /// <summary>Rate of a float32 matrix product on <paramref name="device"/>, timed for about a quarter of a second.</summary>
    public static double MeasureMatrixProductRate(torch.Device device)
    {
        int n = device.type == DeviceType.CPU ? 512 : 2048;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var a = torch.rand(n, n, device: device);
        var b = torch.rand(n, n, device: device);
        a.matmul(b).Dispose();
        Synchronize(device);
        var clock = Stopwatch.StartNew();
        int runs = 0;
        do
        {
            a.matmul(b).Dispose();
            Synchronize(device);
            runs++;
        }
        while (clock.Elapsed < TimeSpan.FromMilliseconds(250));
        return runs * 2.0 * n * n * n / clock.Elapsed.TotalSeconds;
    }

    private static void Synchronize(torch.Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }

    internal static string Duration(TimeSpan t) => t.TotalMinutes switch
    {
        < 1 => $"{Math.Max(1, Math.Round(t.TotalSeconds)):F0} s",
        < 60 => $"{Math.Round(t.TotalMinutes):F0} min",
        _ => $"{(int)t.TotalHours} h {t.Minutes:D2} min",
    };

    internal static string Flops(double flops) => flops switch
    {
        >= 1e15 => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e15:F1} PFLOP"),
        >= 1e12 => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e12:F1} TFLOP"),
        >= 1e9 => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e9:F1} GFLOP"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e6:F1} MFLOP"),
    };
}
