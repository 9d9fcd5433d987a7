using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Tests.Parity;

namespace AttnDreamBooth.Tests.IO.SingleFile;

/// <summary>A pipeline built from an original-layout single file (configs from a weight-less folder) behaves exactly
/// like the one built from the diffusers folder.</summary>
public sealed class SingleFilePipelineTests
{
    public static TheoryData<string> Cases() => SingleFileCheckpointTests.Cases();

    /// <summary>Copies everything but the weights: what a user keeps as "configs" for single files.</summary>
    private static string CopyConfigs(string pipeline, string destination)
    {
        foreach (string file in Directory.EnumerateFiles(pipeline, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
        {
            string target = Path.Combine(destination, Path.GetRelativePath(pipeline, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return destination;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task SingleFilePipelineGeneratesWhatTheFolderPipelineGenerates(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        using var temp = TestPaths.CreateTempDirectory();
        string configs = CopyConfigs(fixture.PipelineFolder, Path.Combine(temp.Path, "configs"));
        Assert.Empty(Directory.EnumerateFiles(configs, "*.safetensors", SearchOption.AllDirectories));

        using var fromFolder = PersonalizationPipeline.FromPretrained(fixture.PipelineFolder).Build();
        using var fromFile = PersonalizationPipeline.FromSingleFile(SingleFileCheck.FileOf(fixture), configs).Build();
        Assert.Equal(Path.GetFullPath(SingleFileCheck.FileOf(fixture)), fromFile.Components.ModelSource);
        Assert.Equal(fromFolder.Components.DefaultResolution, fromFile.Components.DefaultResolution);
        Assert.Equal(fromFolder.Components.SchedulerConfig.PredictionType, fromFile.Components.SchedulerConfig.PredictionType);

        var options = new GenerationOptions { Steps = 2, Seed = 11 };
        var expected = await fromFolder.GenerateAsync("a photo of a dog", options);
        var actual = await fromFile.GenerateAsync("a photo of a dog", options);
        Assert.Equal(expected[0].Image.Pixels, actual[0].Image.Pixels);
    }

    [Fact]
    public void SettingsOverrideWhatTheConfigFolderWouldSay()
    {
        var fixture = FixtureRoots.Get("tiny-sd1");
        var options = new SingleFileLoadOptions { PredictionType = "v_prediction", ImageSize = 32 };
        using var components = StableDiffusionComponents.LoadSingleFile(SingleFileCheck.FileOf(fixture), fixture.PipelineFolder, options: options);
        Assert.Equal(PredictionType.VPrediction, components.SchedulerConfig.PredictionType);
        Assert.Equal(32, components.DefaultResolution);
    }

    [Fact]
    public void PicklesAndForeignConfigsAreRefused()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string pickle = temp.File("model.ckpt");
        File.WriteAllBytes(pickle, [0x80, 0x02]);
        Assert.Throws<InvalidWeightsException>(() => StableDiffusionComponents.LoadSingleFile(pickle, TestPaths.TinySd1));
        // An SD 2.x file against SD 1.x configs: the text-encoder layout does not fit.
        Assert.Throws<InvalidWeightsException>(() => StableDiffusionComponents.LoadSingleFile(SingleFileCheck.FileOf(FixtureRoots.Get("tiny-sd2")), TestPaths.TinySd1));
    }
}
