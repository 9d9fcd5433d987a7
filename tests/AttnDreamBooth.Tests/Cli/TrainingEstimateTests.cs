using System.Text.Json;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Cli;

/// <summary>The cost estimate <c>train</c> prints before it starts, its warning for real-size models on the CPU, and the
/// documents' time tables, which must say what the same count gives.</summary>
public sealed class TrainingEstimateTests
{
    [Fact]
    public void FlopsAreCountedPerLayerAtTheLatentSizeOfItsBlock()
    {
        (string, long[])[] unet =
        [
            ("conv_in.weight", [8, 4, 3, 3]),                                                   // 2·288·256
            ("conv_in.bias", [8]),                                                              // not a weight
            ("time_embedding.linear_1.weight", [32, 8]),                                        // once: 2·256
            ("down_blocks.0.resnets.0.time_emb_proj.weight", [8, 32]),                          // once: 2·256
            ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight", [8, 8]),      // 2·64·256 + 4·256²·8
            ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", [8, 32]),     // at the text: 2·256·77
            ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight", [8, 8]),      // 2·64·256 + 4·256·77·8
            ("down_blocks.0.downsamplers.0.conv.weight", [8, 8, 3, 3]),                         // writes 8×8: 2·576·64
            ("mid_block.resnets.0.conv1.weight", [16, 8, 3, 3]),                                // 8×8: 2·1152·64
            ("up_blocks.0.upsamplers.0.conv.weight", [16, 16, 3, 3]),                           // back at 16×16: 2·2304·256
            ("up_blocks.1.resnets.0.norm1.weight", [8]),                                        // a norm
        ];
        Assert.Equal(4_382_208, ModelFlops.UNetForward(unet, blockCount: 2, latentHeight: 16, latentWidth: 16));
        // 2 heads at 16×16: 2·256² self-attention scores and 2·256·77 cross-attention scores.
        Assert.Equal(170_496, ModelFlops.UNetAttentionScores(unet, blockCount: 2, 16, 16, headsPerLevel: [2, 4]));

        (string, long[])[] text =
        [
            ("text_model.embeddings.token_embedding.weight", [100, 8]),   // a lookup
            ("text_model.encoder.layers.0.mlp.fc1.weight", [32, 8]),      // 2·256·77
            ("text_model.final_layer_norm.weight", [8]),
        ];
        Assert.Equal(39_424, ModelFlops.TextEncoderForward(text));

        Assert.Equal(3, ModelFlops.Level("mid_block.attentions.0.proj_in.weight", 4));
        Assert.Equal(3, ModelFlops.Level("up_blocks.0.resnets.2.conv2.weight", 4));
        Assert.Equal(2, ModelFlops.Level("up_blocks.0.upsamplers.0.conv.weight", 4));
        Assert.Equal(0, ModelFlops.Level("up_blocks.3.attentions.2.proj_out.weight", 4));
        Assert.Equal(0, ModelFlops.Level("conv_out.weight", 4));
    }

    [Fact]
    public void ARealSizeModelOnTheCpuGetsTheEstimateAndAQuickTryWarning()
    {
        var estimate = RealSize("cpu", StagePlan.Paper);
        // SD 2.1-base at 512 px: 339 G multiply-adds in convolutions and projections plus the attention products.
        Assert.InRange(estimate.UNetForwardFlops, 804.2e9, 804.3e9);
        Assert.Equal(865_910_724, estimate.UNetParameters);
        var lines = estimate.Describe();
        Assert.StartsWith("Estimate: about ", lines[0]);
        Assert.Contains("on cpu for 660 steps (60 × batch 8, 100 × batch 8, 500 × batch 8)", lines[0]);
        Assert.Contains("U-Net forward 804.3 GFLOP + text encoder 44.6 GFLOP + 492.4 M attention scores × 45 per image at 64×64 latents", lines[1]);
        Assert.Contains("at 20.0 GFLOP/s (10.0 GFLOP/s per CPU thread, as measured on a busy 2-core machine)", lines[1]);

        // Every step of the plan at the stated rate: (60 + 100) × 8 × 2 and 500 × 8 × 3 images' forward passes.
        double forwardPasses = (60 + 100) * 8 * 2 + 500 * 8 * 3;
        Assert.Equal(492_391_680, estimate.AttentionScores);
        double image = estimate.UNetForwardFlops + estimate.TextForwardFlops + 45 * estimate.AttentionScores;
        Assert.Equal(forwardPasses * image, estimate.TotalFlops, 1e-9 * estimate.TotalFlops);
        double seconds = estimate.TotalFlops / (2 * TrainingEstimate.CpuFlopsPerSecondPerThread);
        Assert.Equal(seconds, estimate.Total.TotalSeconds, 1e-6 * seconds);
        Assert.True(estimate.Total > TimeSpan.FromHours(10), $"{estimate.Total}");

        Assert.True(estimate.RealSizeOnCpu);
        string? warning = estimate.Warning();
        Assert.NotNull(warning);
        Assert.StartsWith("This is a real-size model (866 M U-Net parameters) on the CPU: training takes about ", warning);
        Assert.Contains(TrainingEstimate.Duration(estimate.Total), warning);
        Assert.Contains("--device cuda", warning);
        Assert.Contains("--model samples/models/shapes-sd", warning);
        Assert.Contains("--steps 10,10,20", warning);
        // The latent cache is named only when the caller says how many encodes it takes.
        Assert.DoesNotContain("augmented variants", warning);
        Assert.Contains("encodes the photos' 80 augmented variants with the VAE", (estimate with { LatentEncodes = 80 }).Warning());
    }

    [Fact]
    public void TheGpuRateReproducesTheOfficialTimes()
    {
        // The official README: about 20 minutes per concept for Paper and 6 for Fast on one datacentre GPU.
        var paper = RealSize("cuda", StagePlan.Paper);
        var fast = RealSize("cuda", StagePlan.Fast);
        Assert.InRange(paper.Total.TotalMinutes, 17, 23);
        Assert.InRange(fast.Total.TotalMinutes, 5, 8);
        Assert.Contains("at 10.0 TFLOP/s (what the official implementation's times on one datacentre GPU come to)", paper.Describe()[1]);
    }

    [Fact]
    public void TheTrainCommandPrintsTheWarningUnderTheEstimate()
    {
        var (console, text) = CapturedConsole.Create();
        TrainOutput.PrintEstimate(console, RealSize("cpu", StagePlan.Fast));
        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("Estimate: about 2 days 12 h on cpu for 360 steps", lines[0]);
        Assert.StartsWith("  How: ", lines[1]);
        Assert.StartsWith("warning: This is a real-size model (866 M U-Net parameters) on the CPU: training takes about 2 days 12 h.", lines[2]);

        (console, text) = CapturedConsole.Create();
        TrainOutput.PrintEstimate(console, RealSize("cuda", StagePlan.Fast));
        Assert.DoesNotContain("warning", text.ToString());
    }

    [Fact]
    public void EvaluateEstimatesItsGenerationAndWarnsForARealSizeModelOnTheCpu()
    {
        var cpu = RealSize("cpu", StagePlan.Paper);
        // The paper's protocol: 25 prompts × 16 images, 50 steps of two U-Net passes each.
        double seconds = 25 * 16 * 50 * 2 * (cpu.UNetForwardFlops + 45 * cpu.AttentionScores) / 20e9;
        Assert.Equal(seconds, cpu.Generation(400, 50).TotalSeconds, 1e-6 * seconds);
        var lines = cpu.DescribeEvaluation(25, 16, 50);
        Assert.Equal(2, lines.Count);
        Assert.StartsWith($"Estimate: about {TrainingEstimate.Duration(TimeSpan.FromSeconds(seconds))} on cpu to generate 25 × 16 images at 50 steps", lines[0]);
        Assert.StartsWith("warning: This is a real-size model (866 M U-Net parameters) on the CPU: the evaluation takes about 19 days", lines[1]);
        Assert.Contains("--device cuda", lines[1]);
        Assert.Contains("--images-per-prompt 2 --steps 20", lines[1]);

        var gpu = RealSize("cuda", StagePlan.Paper).DescribeEvaluation(25, 16, 50);
        Assert.StartsWith("Estimate: about 55 min on cuda to generate 25 × 16 images", Assert.Single(gpu));
    }

    [Fact]
    public void NoWarningOnAGpuOrForASmallModel()
    {
        Assert.Null(RealSize("cuda", StagePlan.Paper).Warning());
        Assert.False(RealSize("cuda", StagePlan.Paper).RealSizeOnCpu);
        Assert.Null(RealSize("cuda:1", StagePlan.Fast).Warning());
        Assert.Equal(60 + 100 + 200, RealSize("cuda", StagePlan.Fast).Plan.TotalSteps);

        var (unet, text) = Weights(Path.Combine(TestPaths.TinySd1, "unet"), Path.Combine(TestPaths.TinySd1, "text_encoder"));
        var tiny = TrainingEstimate.Create(unet, text, 2, [8, 8], 32, 32, StagePlan.Paper, "cpu", cpuThreads: 2);
        Assert.True(tiny.UNetParameters < TrainingEstimate.RealSizeParameters);
        Assert.Null(tiny.Warning());
        Assert.False(tiny.RealSizeOnCpu);
    }

    [Fact]
    public void DurationsAndFlopsReadNaturally()
    {
        Assert.Equal("1 s", TrainingEstimate.Duration(TimeSpan.FromMilliseconds(20)));
        Assert.Equal("42 s", TrainingEstimate.Duration(TimeSpan.FromSeconds(42.4)));
        Assert.Equal("12 min", TrainingEstimate.Duration(TimeSpan.FromMinutes(11.6)));
        Assert.Equal("3 h 05 min", TrainingEstimate.Duration(TimeSpan.FromMinutes(185)));
        Assert.Equal("7 days 3 h", TrainingEstimate.Duration(TimeSpan.FromHours(171.7)));
        Assert.Equal("804.3 GFLOP", TrainingEstimate.Flops(804.26e9));
        Assert.Equal("1.5 PFLOP", TrainingEstimate.Flops(1.5e15));
    }

    [Fact]
    public async Task TrainPrintsTheEstimateBeforeTheFirstStep()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
            ["train", "--model", TestPaths.TinySd1, "--images", TinyPipeline.DogPhotos, "--category", "dog", "--out", temp.File("run"),
             "--steps", "1,0,1", "--batch-size", "1"], console);
        string output = text.ToString();
        Assert.True(exit == 0, output);
        int estimate = output.IndexOf("Estimate: about ", StringComparison.Ordinal);
        Assert.True(estimate >= 0, output);
        Assert.Contains("on cpu for 2 steps (1 × batch 1, 1 × batch 1)", output);
        Assert.Contains("M attention scores × 45 per image at 32×32 latents (counted from the layer shapes)", output);
        Assert.True(estimate < output.IndexOf("Saved", StringComparison.Ordinal), output);
        Assert.DoesNotContain("real-size", output);
    }

    /// <summary>What README's and getting started's "How long it takes" tables say for SD 2.1-base at 512 px.</summary>
    public static TheoryData<string> TimeTables => new() { "README.md", "docs/getting-started.md" };

    [Theory]
    [MemberData(nameof(TimeTables))]
    public void TheDocumentedEstimatesAreWhatTheCountGives(string document)
    {
        var cpuPaper = RealSize("cpu", StagePlan.Paper);
        var gpuPaper = RealSize("cuda", StagePlan.Paper);
        // Generating an image: 50 steps × 2 U-Net passes (classifier-free guidance) + the two prompt encodings + the VAE
        // decoder, which the documents state as 2.5 TFLOP at 512 px.
        double image = 50 * 2 * (cpuPaper.UNetForwardFlops + TrainingEstimate.FlopsPerAttentionScore * cpuPaper.AttentionScores) + 2 * cpuPaper.TextForwardFlops + 2.5e12;
        double cpuRate = cpuPaper.FlopsPerSecond, gpuRate = gpuPaper.FlopsPerSecond;
        var expected = new Dictionary<string, (TimeSpan Gpu, TimeSpan Cpu)>
        {
            ["`train` (Paper"] = (gpuPaper.Total, cpuPaper.Total),
            ["`train --preset fast`"] = (RealSize("cuda", StagePlan.Fast).Total, RealSize("cpu", StagePlan.Fast).Total),
            ["`generate` (1 image"] = (TimeSpan.FromSeconds(image / gpuRate), TimeSpan.FromSeconds(image / cpuRate)),
            ["`generate --count 4`"] = (TimeSpan.FromSeconds(4 * image / gpuRate), TimeSpan.FromSeconds(4 * image / cpuRate)),
            ["`evaluate` defaults"] = (TimeSpan.FromSeconds(25 * 16 * image / gpuRate), TimeSpan.FromSeconds(25 * 16 * image / cpuRate)),
        };

        var table = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, document)).SkipWhile(l => !(l.StartsWith('|') && l.Contains("SD 2.1-base", StringComparison.Ordinal)))
            .TakeWhile(l => l.StartsWith('|')).Select(l => l.Split('|').Select(c => c.Trim()).ToArray()).ToArray();
        Assert.NotEmpty(table);
        int gpu = Array.FindIndex(table[0], c => c.Contains("SD 2.1-base", StringComparison.Ordinal) && c.Contains("GPU", StringComparison.Ordinal));
        int cpu = Array.FindIndex(table[0], c => c.Contains("SD 2.1-base", StringComparison.Ordinal) && c.Contains("CPU", StringComparison.Ordinal));
        Assert.True(gpu > 0 && cpu > 0, string.Join(" | ", table[0]));
        int compared = 0;
        foreach (var row in table.Skip(2))
        {
            var key = expected.Keys.SingleOrDefault(k => row[1].StartsWith(k, StringComparison.Ordinal));
            if (key is null) continue;
            foreach (var (column, time) in new[] { (gpu, expected[key].Gpu), (cpu, expected[key].Cpu) })
            {
                var documented = DocumentedTime(row[column]);
                Assert.True(Math.Abs(documented / time - 1) < 0.1, $"{document}: {row[1]} says '{row[column]}', the count gives {TrainingEstimate.Duration(time)}");
                compared++;
            }
        }
        Assert.True(compared >= 8, $"{document}: only {compared} estimates found in the table");
    }

    [Fact]
    public void GettingStartedShowsWhatTrainAndEvaluatePrintForARealSizeModelOnTheCpu()
    {
        string text = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "docs", "getting-started.md"));
        var estimate = RealSize("cpu", StagePlan.Paper);
        Assert.Contains(estimate.Describe()[0], text);
        Assert.Contains(estimate.Warning()![..estimate.Warning()!.IndexOf(". ", StringComparison.Ordinal)], text);
        string evaluation = estimate.DescribeEvaluation(25, 16, 50)[0];
        Assert.Contains(evaluation[..evaluation.IndexOf(" (", StringComparison.Ordinal)].Replace(" 25 × 16", "\n25 × 16", StringComparison.Ordinal), text);
    }

    private static TimeSpan DocumentedTime(string cell)
    {
        var m = System.Text.RegularExpressions.Regex.Match(cell, @"≈ ([0-9.]+) (s|min|h|days)\b");
        Assert.True(m.Success, $"no '≈ <number> <unit>' in '{cell}'");
        double value = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch
        {
            "s" => TimeSpan.FromSeconds(value),
            "min" => TimeSpan.FromMinutes(value),
            "h" => TimeSpan.FromHours(value),
            _ => TimeSpan.FromDays(value),
        };
    }

    private static TrainingEstimate RealSize(string device, StagePlan plan)
    {
        string folder = Path.Combine(TestPaths.FixturesRoot, "real-size", "stable-diffusion-2-1-base");
        var unet = ShapesFile(Path.Combine(folder, "unet", "state_dict_shapes.json"));
        var text = ShapesFile(Path.Combine(folder, "text_encoder", "state_dict_shapes.json"));
        return TrainingEstimate.Create(unet, text, blockCount: 4, headsPerLevel: [5, 10, 20, 20], 64, 64, plan, device, cpuThreads: 2);
    }

    private static List<(string Name, long[] Shape)> ShapesFile(string path) =>
        JsonSerializer.Deserialize<Dictionary<string, long[]>>(File.ReadAllText(path))!.Select(kv => (kv.Key, kv.Value)).ToList();

    private static (List<(string, long[])> UNet, List<(string, long[])> Text) Weights(string unetFolder, string textFolder)
    {
        // The safetensors header: an 8-byte length, then JSON naming every tensor's shape.
        static List<(string, long[])> Read(string folder)
        {
            using var file = File.OpenRead(Directory.GetFiles(folder, "*.safetensors").Single());
            var length = new byte[8];
            file.ReadExactly(length);
            var header = new byte[BitConverter.ToInt64(length)];
            file.ReadExactly(header);
            using var json = JsonDocument.Parse(header);
            return json.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
                .Select(p => (p.Name, p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray())).ToList();
        }
        return (Read(unetFolder), Read(textFolder));
    }
}
