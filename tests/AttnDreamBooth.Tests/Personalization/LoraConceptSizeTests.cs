using System.Buffers.Binary;
using System.Text.Json;
using System.Text.RegularExpressions;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using TorchSharp.Modules;
using Xunit.Abstractions;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// How small a LoRA concept is: the saved adapters hold exactly rank × (fan-in + fan-out) floats per wrapped layer, counted
/// here from the layers' shapes, and a LoRA-trained concept of the tiny SD 1.x pipeline is a small fraction of the same
/// concept fine-tuned in full (under 1 % with attention adapters); at the real SD 1.5 / 2.1 sizes (from
/// tests/fixtures/real-size) rank-4 adapters on the default layers are 0.2 % of the U-Net.
/// </summary>
public sealed partial class LoraConceptSizeTests(ITestOutputHelper output)
{
    // The stages' layers, written out independently of the library's own selection.
    [GeneratedRegex(@"\.attn2\.(to_q|to_k|to_v|to_out\.0)$")]
    private static partial Regex CrossAttention();

    [GeneratedRegex(@"\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$")]
    private static partial Regex Attention();

    [GeneratedRegex(@"(\.attn[12]\.(to_q|to_k|to_v|to_out\.0)|\.ff\.net\.(0\.proj|2)|\.attentions\.\d+\.(proj_in|proj_out))$")]
    private static partial Regex Transformer();

    /// <summary>rank × (fan-in + fan-out) per layer, rank capped at the layer's own rank; float32.</summary>
    private static long AdapterBytes(IEnumerable<(string Path, long[] WeightShape)> layers, Regex selected, int rank) =>
        layers.Where(l => selected.IsMatch(l.Path)).Sum(l =>
        {
            long fanIn = l.WeightShape.Skip(1).Aggregate(1L, (a, d) => a * d), fanOut = l.WeightShape[0];
            return 4 * Math.Min(rank, Math.Min(fanIn, fanOut)) * (fanIn + fanOut);
        });

    private static long FolderBytes(string folder) => Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    /// <summary>The tensor bytes of a safetensors file (its size minus the 8-byte length and the JSON header).</summary>
    private static long PayloadBytes(string file)
    {
        using var stream = File.OpenRead(file);
        Span<byte> length = stackalloc byte[8];
        stream.ReadExactly(length);
        return stream.Length - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(length);
    }

    private static readonly Lazy<Task<long>> FullConceptBytes = new(async () =>
    {
        using var dir = TestPaths.CreateTempDirectory();
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 1, 1), TinyPipeline.Options());
        var model = await pipeline.TrainAsync(TinyPipeline.Dog());
        await model.SaveAsync(dir.File("full"));
        return FolderBytes(dir.File("full"));
    });

    /// <summary>Stage 2 on the attn2 projections and stage 3 on <paramref name="stage3"/> ("attention": attn1 + attn2;
    /// "transformer": the default, adding feed-forward and proj_in/proj_out). The tiny U-Net's layers are only 32–64 wide,
    /// so even rank 1 is 1.5–3 % of a layer, and the file's header (one name per tensor) is as large as the adapters:
    /// with the default layers the concept is 1.2 % of the full one (measured), with attention layers under 1 %.</summary>
    [Theory]
    [InlineData("attention", 1, 0.01)]
    [InlineData("transformer", 1, 0.02)]
    public async Task ALoraConceptIsAFractionOfTheFullConceptAndHoldsExactlyItsAdapters(string stage3, int rank, double maxRatio)
    {
        using var dir = TestPaths.CreateTempDirectory();
        var modules = stage3 == "attention" ? LoraUNetModules.Attention : LoraUNetModules.Transformer;
        var plan = TinyPipeline.Plan(1, 1, 1).WithLora(new LoraOptions(Rank: rank)).WithLora(TrainingStage.UNet, new LoraOptions(Rank: rank), modules);
        using (var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options()))
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog());
            await model.SaveAsync(dir.File("lora"));
        }

        using var unet = AttnDreamBooth.Models.UNet.UNet2DConditionModel.FromFolder(Path.Combine(TestPaths.TinySd1, "unet"));
        var layers = unet.named_modules().Where(m => m.module is Linear or Conv2d)
            .Select(m => (m.name, m.module is Linear l ? l.weight!.shape : ((Conv2d)m.module).weight.shape)).ToArray();
        // Stage 2's attn2 adapters and stage 3's are one set: the union of their layers (stage 3's include attn2).
        long expected = AdapterBytes(layers, stage3 == "attention" ? Attention() : Transformer(), rank);
        long payload = PayloadBytes(Path.Combine(dir.File("lora"), PersonalizedModel.LoraWeightsFile));
        Assert.Equal(expected, payload);

        long loraConcept = FolderBytes(dir.File("lora")), fullConcept = await FullConceptBytes.Value;
        double ratio = (double)loraConcept / fullConcept;
        output.WriteLine($"tiny SD 1.x, stage 3 {stage3}, rank {rank}: adapters {expected:N0} B, LoRA concept {loraConcept:N0} B, full concept {fullConcept:N0} B ({ratio:P2})");
        Assert.True(ratio < maxRatio, $"the LoRA concept is {ratio:P2} of the full one");
    }

    [Theory]
    [InlineData("stable-diffusion-v1-5")]
    [InlineData("stable-diffusion-2-1")]
    public void AtRealSizeRankFourAdaptersAreUnderOnePercentOfTheUNet(string variant)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.FixturesRoot, "real-size", variant, "unet", "state_dict_shapes.json")));
        var shapes = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray());
        long unetBytes = 4 * shapes.Values.Sum(s => s.Aggregate(1L, (a, d) => a * d));
        // Wrappable layers: weights of linear ([out, in]) and convolution ([out, in, kh, kw]) layers.
        var layers = shapes.Where(p => p.Key.EndsWith(".weight", StringComparison.Ordinal) && p.Value.Length is 2 or 4)
            .Select(p => (p.Key[..^".weight".Length], p.Value)).ToArray();
        foreach (var (regex, what) in new[] { (CrossAttention(), "stage 2 (attn2)"), (Transformer(), "stages 2–3 (transformer)") })
        {
            long bytes = AdapterBytes(layers, regex, 4);
            double ratio = (double)bytes / unetBytes;
            output.WriteLine($"{variant}, {what}, rank 4: {bytes:N0} B = {ratio:P3} of the U-Net's {unetBytes:N0} B");
            Assert.True(ratio < 0.01, $"{variant} {what}: {ratio:P3}");
        }
    }
}
