using System.Globalization;
using AttnDreamBooth.Personalization;
using TorchSharp;

namespace AttnDreamBooth.Cli;

/// <summary>
/// What a training run will cost, said before it starts: the plan's steps × the FLOPs of one step (<see cref="ModelFlops"/>,
/// counted from the model's layer shapes at the training resolution) ÷ a sustained rate for the device. Stages 1 and 2
/// run forward and input gradients (≈ 2 forward passes: only the embedding row or the cross-attention key/value
/// projections get weight gradients), stage 3 also every weight gradient (≈ 3).
/// </summary>
internal sealed record TrainingEstimate
{
    /// <summary>U-Nets at least this large are real-size models (SD 1.x/2.x: 860 M); on a CPU they take hours.</summary>
    public const long RealSizeParameters = 100_000_000;

    /// <summary>Sustained training rate per CPU thread, measured with the Shapes model on the shared 2-core machine
    /// (docs/getting-started.md, "How long it takes"); an idle or larger CPU does better.</summary>
    public const double CpuFlopsPerSecondPerThread = 10e9;

    /// <summary>Sustained rate on a GPU: the official implementation's reported times on one datacentre GPU (about 20 min
    /// for Paper, 6 for Fast on SD 2.1-base) are 10–12 TFLOP/s by this count.</summary>
    public const double GpuFlopsPerSecond = 10e12;

    /// <summary>What one attention score costs, in FLOPs at the rates above (softmax forward and backward and its
    /// memory traffic; measured on the tiny test model, whose 4-wide heads make it dominate).</summary>
    public const double FlopsPerAttentionScore = 45;

    public required long UNetParameters { get; init; }
    public required int LatentHeight { get; init; }
    public required int LatentWidth { get; init; }
    public required double UNetForwardFlops { get; init; }
    public required double TextForwardFlops { get; init; }

    /// <summary>Softmax entries of one U-Net forward (<see cref="ModelFlops.UNetAttentionScores"/>).</summary>
    public required double AttentionScores { get; init; }
    public required StagePlan Plan { get; init; }
    public required string Device { get; init; }
    public required bool OnCpu { get; init; }

    /// <summary>VAE encodes of the photos' augmented variants before the first step (photos × variants per photo; 0 when
    /// unknown or encoded afresh every step). Not in <see cref="Total"/>: a convolutional encoder runs at a rate of its own.</summary>
    public int LatentEncodes { get; init; }

    /// <summary>The rate the estimate assumes for <see cref="Device"/>.</summary>
    public required double FlopsPerSecond { get; init; }

    /// <summary>Forward passes' worth of work per image in a step of <paramref name="stage"/>: a LoRA stage 3 computes
    /// input gradients but only the small adapters' weight gradients, like stages 1–2.</summary>
    public static int Passes(TrainingStage stage, bool lora = false) => stage == TrainingStage.UNet && !lora ? 3 : 2;

    /// <summary>One image's forward pass, attention scores included.</summary>
    public double ImageFlops => UNetForwardFlops + TextForwardFlops + FlopsPerAttentionScore * AttentionScores;

    public double StepFlops(TrainingStage stage) => Plan[stage].EffectiveBatchSize * Passes(stage, Plan[stage].Lora is not null) * ImageFlops;

    public TimeSpan StepTime(TrainingStage stage) => TimeSpan.FromSeconds(StepFlops(stage) / FlopsPerSecond);

    public TimeSpan Total => Plan.EnabledStages.Aggregate(TimeSpan.Zero, (sum, s) => sum + StepTime(s) * Plan[s].Steps);

    public double TotalFlops => Plan.EnabledStages.Sum(s => StepFlops(s) * Plan[s].Steps);

    /// <summary>From a loaded pipeline: its U-Net and text encoder weights at the training resolution.</summary>
    public static TrainingEstimate For(PersonalizationPipeline pipeline, StagePlan plan, string device)
    {
        var components = pipeline.Components;
        int latent = components.DefaultResolution / components.Vae.DownsampleFactor;
        var unet = components.UNet.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        var text = components.TextEncoder.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
        var config = components.UNet.Config;
        return Create(unet, text, config.BlockCount, config.HeadsPerDownBlock, latent, latent, plan, device, torch.get_num_threads());
    }

    /// <summary>From weight names and shapes (e.g. a model's state_dict_shapes.json).</summary>
    /// <param name="cpuThreads">Threads libtorch computes with on a CPU.</param>
    public static TrainingEstimate Create(IReadOnlyCollection<(string Name, long[] Shape)> unet, IEnumerable<(string Name, long[] Shape)> textEncoder,
        int blockCount, IReadOnlyList<int> headsPerLevel, int latentHeight, int latentWidth, StagePlan plan, string device, int cpuThreads)
    {
        bool onCpu = device.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase);
        return new()
        {
            UNetParameters = unet.Sum(w => w.Shape.Aggregate(1L, (a, d) => a * d)),
            LatentHeight = latentHeight,
            LatentWidth = latentWidth,
            UNetForwardFlops = ModelFlops.UNetForward(unet, blockCount, latentHeight, latentWidth),
            TextForwardFlops = ModelFlops.TextEncoderForward(textEncoder),
            AttentionScores = ModelFlops.UNetAttentionScores(unet, blockCount, latentHeight, latentWidth, headsPerLevel),
            Plan = plan,
            Device = device,
            OnCpu = onCpu,
            FlopsPerSecond = onCpu ? CpuFlopsPerSecondPerThread * Math.Max(1, cpuThreads) : GpuFlopsPerSecond,
        };
    }

    /// <summary>The lines printed before training: the estimate and how it was made.</summary>
    public IReadOnlyList<string> Describe()
    {
        string stages = string.Join(", ", Plan.EnabledStages.Select(s => $"{Plan[s].Steps} × batch {Plan[s].EffectiveBatchSize}"));
        string rate = OnCpu
            ? $"{Flops(FlopsPerSecond)}/s ({Flops(CpuFlopsPerSecondPerThread)}/s per CPU thread, as measured on a busy 2-core machine)"
            : $"{Flops(FlopsPerSecond)}/s (what the official implementation's times on one datacentre GPU come to)";
        return
        [
            $"Estimate: about {Duration(Total)} on {Device} for {Plan.TotalSteps} steps ({stages}), {Flops(TotalFlops)} in all.",
            $"  How: U-Net forward {Flops(UNetForwardFlops)} + text encoder {Flops(TextForwardFlops)} + {AttentionScores / 1e6:F1} M attention scores × " +
            $"{FlopsPerAttentionScore:F0} per image at {LatentHeight}×{LatentWidth} latents (counted from the layer shapes) × 2 passes (stages 1–2) " +
            $"or 3 (stage 3 without LoRA) × batch × steps, at {rate}. " +
            "The progress bars' remaining time replaces this once steps run.",
        ];
    }

    /// <summary>A real-size model (<see cref="RealSizeParameters"/>) about to train on the CPU.</summary>
    public bool RealSizeOnCpu => OnCpu && UNetParameters >= RealSizeParameters;

    /// <summary>The warning for a real-size model on the CPU, with what to do instead; null otherwise.</summary>
    public string? Warning()
    {
        if (!RealSizeOnCpu) return null;
        // Measured: 80 encodes at 512 px took 13 min on the busy 2-core machine, more than two stage-3 steps.
        string encodes = LatentEncodes > 0 ? $" Before the first step it encodes the photos' {LatentEncodes} augmented variants with the VAE, several seconds each." : "";
        return $"This is a real-size model ({UNetParameters / 1e6:F0} M U-Net parameters) on the CPU: training takes about {Duration(Total)}.{encodes} " +
               "Train on a GPU (--device cuda), or for a quick try use the Shapes model (--model samples/models/shapes-sd, minutes on a CPU) " +
               "or fewer steps (--steps 10,10,20 --batch-size 1).";
    }

    /// <summary>Generating <paramref name="images"/> images with <paramref name="steps"/> sampler steps: two U-Net passes per
    /// step (classifier-free guidance). The VAE decoder and the prompt encodings are left out (a few per cent on real models).</summary>
    public TimeSpan Generation(int images, int steps) =>
        TimeSpan.FromSeconds((double)images * steps * 2 * (UNetForwardFlops + FlopsPerAttentionScore * AttentionScores) / FlopsPerSecond);

    /// <summary>The lines <c>evaluate</c> prints before it generates: the estimate and, for a real-size model on the CPU,
    /// a warning with the quick-try settings.</summary>
    public IReadOnlyList<string> DescribeEvaluation(int prompts, int imagesPerPrompt, int steps)
    {
        var time = Generation(prompts * imagesPerPrompt, steps);
        var lines = new List<string>
        {
            $"Estimate: about {Duration(time)} on {Device} to generate {prompts} × {imagesPerPrompt} images at {steps} steps " +
            $"(2 U-Net passes of {Flops(UNetForwardFlops + FlopsPerAttentionScore * AttentionScores)} per step at {Flops(FlopsPerSecond)}/s), then the CLIP scores.",
        };
        if (OnCpu && UNetParameters >= RealSizeParameters)
            lines.Add($"warning: This is a real-size model ({UNetParameters / 1e6:F0} M U-Net parameters) on the CPU: the evaluation takes about {Duration(time)}. " +
                      "Evaluate on a GPU (--device cuda), or for a quick try use fewer images (--images-per-prompt 2 --steps 20) or a --prompts file with a few prompts.");
        return lines;
    }

    internal static string Duration(TimeSpan t) => t.TotalMinutes switch
    {
        < 1 => $"{Math.Max(1, Math.Round(t.TotalSeconds)):F0} s",
        < 60 => $"{Math.Round(t.TotalMinutes):F0} min",
        < 48 * 60 => $"{(int)t.TotalHours} h {t.Minutes:D2} min",
        _ => $"{(int)t.TotalDays} days {t.Hours} h",
    };

    internal static string Flops(double flops) => flops switch
    {
        >= 1e15 => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e15:F1} PFLOP"),
        >= 1e12 => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e12:F1} TFLOP"),
        >= 1e9 => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e9:F1} GFLOP"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{flops / 1e6:F1} MFLOP"),
    };
}
