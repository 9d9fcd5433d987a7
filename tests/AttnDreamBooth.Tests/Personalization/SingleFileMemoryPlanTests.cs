using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Tests.Parity;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// Training from a single file with the memory options (frozen precision, releasing the VAE and the text encoder) reloads
/// exact weights from that file, not from the config folder: the config folder here holds decoy weights (the real ones
/// halved), so restoring from it would be caught bit for bit, and a weight-less config folder would throw.
/// </summary>
public sealed class SingleFileMemoryPlanTests
{
    public static TheoryData<string, bool, bool, bool> MemoryOptions() => new()
    {
        { "fp16", true, true, true },
        { "fp16", false, false, true },
        { "fp16", true, false, false },
        { "bf16", true, true, true },
        { "bf16", false, false, true },
        { "none", true, true, false },
    };

    private static ScalarType? DType(string name) => name switch { "bf16" => ScalarType.BFloat16, "fp16" => ScalarType.Float16, _ => null };

    /// <summary>A config folder for the single file whose U-Net and VAE weights are the real ones halved (or absent).</summary>
    private static string DecoyConfigs(string pipeline, string destination, bool withDecoyWeights)
    {
        foreach (string file in Directory.EnumerateFiles(pipeline, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
        {
            string target = Path.Combine(destination, Path.GetRelativePath(pipeline, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        if (!withDecoyWeights) return destination;
        foreach (string component in new[] { "unet", "vae", "text_encoder" })
        {
            using var source = StateDictSource.OpenComponent(Path.Combine(pipeline, component));
            var halved = source.Names.ToDictionary(n => n, n => { using var t = source.Read(n); return t.is_floating_point() ? t.mul(Kept(0.5)) : t.clone(); });
            SafetensorsWriter.Write(Path.Combine(destination, component, Path.GetFileName(source.FilePaths[0])), halved);
            foreach (var t in halved.Values) t.Dispose();
        }
        return destination;
    }

    [Theory]
    [MemberData(nameof(MemoryOptions))]
    public async Task SingleFileTrainingMatchesTheFolderRunBitForBit(string dtype, bool release, bool checkpointing, bool decoyWeights)
    {
        var fixture = FixtureRoots.Get("tiny-sd1");
        using var temp = TestPaths.CreateTempDirectory();
        string configs = DecoyConfigs(fixture.PipelineFolder, temp.File("configs"), decoyWeights);
        var plan = TinyPipeline.Plan(1, 2, 1);
        var options = TinyPipeline.Options() with { FrozenWeightsDType = DType(dtype), ReleaseVaeDuringTraining = release,
            ReleaseTextEncoderDuringTraining = release, GradientCheckpointing = checkpointing };

        using var fromFolder = TinyPipeline.Build(plan, options, fixture.PipelineFolder);
        await fromFolder.TrainAsync(TinyPipeline.Dog());
        using var fromFile = PersonalizationPipeline.FromSingleFile(SingleFileCheck.FileOf(fixture), configs).WithStages(plan).WithTrainingOptions(options).Build();
        await fromFile.TrainAsync(TinyPipeline.Dog());

        Assert.True(TinyPipeline.BitEqual(fromFolder.ConceptEmbedding!.Weight, fromFile.ConceptEmbedding!.Weight), "concept embedding differs");
        foreach (var (module, expected, actual) in new (string, nn.Module, nn.Module)[]
                 {
                     ("unet", fromFolder.Components.UNet, fromFile.Components.UNet),
                     ("vae", fromFolder.Components.Vae, fromFile.Components.Vae),
                     ("text_encoder", fromFolder.Components.TextEncoder, fromFile.Components.TextEncoder),
                 })
        {
            var want = expected.state_dict();
            var got = actual.state_dict();
            Assert.Equal(want.Keys.Order(StringComparer.Ordinal), got.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, tensor) in want) Assert.True(TinyPipeline.BitEqual(tensor, got[name]), $"{module}.{name} differs from the folder-built run");
        }
    }
}
