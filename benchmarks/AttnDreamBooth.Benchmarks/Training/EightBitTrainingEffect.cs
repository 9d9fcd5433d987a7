using System.Globalization;
using System.Text;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// What 8-bit optimizer states do to training, measured rather than assumed: the same personalization run (same seed,
/// photos, plan) on each tiny fixture pipeline with float32 AdamW moments, with 8-bit moments at the default
/// threshold (tensors of ≥ 4,096 elements), and with every tensor quantized; then the loss curves per stage and an
/// image generated from each final model with one seed are compared against the float32 run. Not a BenchmarkDotNet
/// job (nothing here is timed): <c>dotnet run -c Release -- eight-bit-effect [--steps 30,30,30] [--out folder]</c>.
/// </summary>
internal static class EightBitTrainingEffect
{
    public const string Command = "eight-bit-effect";

    private sealed record Variant(string Name, bool EightBit, long MinQuantizedElements);

    private sealed record Run(IReadOnlyList<double> Losses, byte[] Pixels, Dictionary<string, float[]> Weights, float[] Embedding);

    private static readonly Variant[] Variants =
    [
        new("float32", false, 0),
        new("8-bit (tensors ≥ 4096)", true, 4096),
        new("8-bit (every tensor)", true, 1),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var options = CommandOptions.Parse(args, Command, "[--steps s1,s2,s3] [--out folder]", "--steps", "--out");
        if (options is null) return 2;
        int[] steps = options.Integers("--steps") ?? [30, 30, 30];
        string? output = options.Text("--out");
        if (steps.Length != 3 || steps.Any(s => s < 1)) throw new ArgumentException("--steps needs three positive step counts (stages 1, 2, 3).", nameof(args));

        string root = RepoRoot();
        // The Fast preset's learning rates and losses, batch 1 and a few dozen steps per stage so that a loaded
        // 2-core machine finishes in minutes.
        var plan = StagePlan.Fast.WithBatchSize(1).WithStepsOrSkip(steps);
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Plan: StagePlan.Fast, batch 1, steps {string.Join("/", steps)}; seed 7; 2 dog photos; image: \"a {{}} on the beach\", seed 3, 10 DDIM steps.");
        report.AppendLine();
        report.AppendLine("| model | states | stage | max \\|Δloss\\| | mean \\|Δloss\\| | mean loss (float32) | final image: max / mean \\|Δpixel\\| (0–255) | U-Net: ‖θ − θ₃₂‖ / ‖θ₃₂ − θ₀‖ | [V] embedding: ‖e − e₃₂‖ / ‖e₃₂‖ |");
        report.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (string model in new[] { "tiny-sd1", "tiny-sd2" })
        {
            string folder = Path.Combine(root, "tests", "fixtures", model, "pipeline");
            Dictionary<string, float[]> initial;
            using (var untrained = PersonalizationPipeline.FromPretrained(folder).Build())
                initial = Weights(untrained);
            Run? reference = null;
            var curves = new List<(string Name, IReadOnlyList<double> Losses)>();
            foreach (var variant in Variants)
            {
                var run = await TrainAsync(folder, root, plan, variant);
                curves.Add((variant.Name, run.Losses));
                reference ??= run;
                if (ReferenceEquals(run, reference)) continue;
                int offset = 0;
                for (int stage = 0; stage < 3; stage++)
                {
                    var diffs = Enumerable.Range(offset, steps[stage]).Select(i => Math.Abs(run.Losses[i] - reference.Losses[i])).ToArray();
                    double meanLoss = Enumerable.Range(offset, steps[stage]).Average(i => reference.Losses[i]);
                    offset += steps[stage];
                    string final = stage == 2
                        ? $"{PixelDifference(run.Pixels, reference.Pixels)} | {Relative(run.Weights, reference.Weights, initial):G3} | {RelativeEmbedding(run.Embedding, reference.Embedding):G3}"
                        : "| | ";
                    report.AppendLine(CultureInfo.InvariantCulture, $"| {model} | {variant.Name} | {stage + 1} | {diffs.Max():G3} | {diffs.Average():G3} | {meanLoss:G3} | {final} |");
                }
            }
            if (output is not null) WriteCurves(output, model, curves);
        }
        Console.WriteLine(report.ToString());
        if (output is not null) File.WriteAllText(Path.Combine(output, "summary.md"), report.ToString());
        return 0;
    }

    private static async Task<Run> TrainAsync(string folder, string root, StagePlan plan, Variant variant)
    {
        var options = new TrainingOptions
        {
            Seed = 7,
            EightBitOptimizerStates = variant.EightBit,
            MinQuantizedOptimizerElements = variant.EightBit ? variant.MinQuantizedElements : AttnDreamBooth.Training.AdamWOptimizer.DefaultMinQuantizedElements,
            Data = new TrainingDataOptions { VariantsPerImage = 2, Images = new ConceptImageOptions { Resolution = 0 } },
        };
        using var pipeline = PersonalizationPipeline.FromPretrained(folder).WithStages(plan).WithTrainingOptions(options).Build();
        var photos = Directory.GetFiles(Path.Combine(root, "samples", "data", "dog"), "*.jpg").Order(StringComparer.Ordinal).Take(2);
        var model = await pipeline.TrainAsync(Concept.FromFiles(photos, "dog"));
        if (model.LossHistory.Count != plan.Stage1.Steps + plan.Stage2.Steps + plan.Stage3.Steps)
            throw new InvalidOperationException($"Expected one loss per step, got {model.LossHistory.Count}.");
        var images = await pipeline.GenerateAsync("a {} on the beach", new GenerationOptions { Steps = 10, Seed = 3, Sampler = "ddim" });
        return new Run(model.LossHistory.ToArray(), images[0].Image.Pixels, Weights(pipeline), model.EmbeddingVector().data<float>().ToArray());
    }

    private static Dictionary<string, float[]> Weights(PersonalizationPipeline pipeline)
    {
        return pipeline.Components.UNet.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().cpu().to_type(TorchSharp.torch.float32).contiguous().data<float>().ToArray());
    }

    private static string PixelDifference(byte[] a, byte[] b)
    {
        int max = 0;
        long sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            int d = Math.Abs(a[i] - b[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        return string.Create(CultureInfo.InvariantCulture, $"{max} / {sum / (double)a.Length:G3}");
    }

    /// <summary>How far the 8-bit run's U-Net ends from the float32 run's, relative to how far training moved it.</summary>
    private static double Relative(Dictionary<string, float[]> run, Dictionary<string, float[]> reference, Dictionary<string, float[]> initial)
    {
        double apart = 0, moved = 0;
        foreach (var (key, r) in reference)
        {
            var x = run[key];
            var x0 = initial[key];
            for (int i = 0; i < r.Length; i++)
            {
                apart += Math.Pow(x[i] - r[i], 2);
                moved += Math.Pow(r[i] - x0[i], 2);
            }
        }
        return Math.Sqrt(apart / moved);
    }

    /// <summary>‖e − e₃₂‖ / ‖e₃₂‖ for the learned [V] embedding.</summary>
    private static double RelativeEmbedding(float[] run, float[] reference)
    {
        double apart = 0, norm = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            apart += Math.Pow(run[i] - reference[i], 2);
            norm += Math.Pow(reference[i], 2);
        }
        return Math.Sqrt(apart / norm);
    }

    private static void WriteCurves(string output, string model, List<(string Name, IReadOnlyList<double> Losses)> curves)
    {
        Directory.CreateDirectory(output);
        var csv = new StringBuilder("step," + string.Join(",", curves.Select(c => c.Name)) + "\n");
        for (int i = 0; i < curves[0].Losses.Count; i++)
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{i + 1},{string.Join(",", curves.Select(c => c.Losses[i].ToString("R", CultureInfo.InvariantCulture)))}"));
        string path = Path.Combine(output, $"{model}-losses.csv");
        File.WriteAllText(path + ".tmp", csv.ToString());
        File.Move(path + ".tmp", path, overwrite: true);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("Run from inside the repository (AttnDreamBooth.sln not found above " + AppContext.BaseDirectory + ").");
    }
}
