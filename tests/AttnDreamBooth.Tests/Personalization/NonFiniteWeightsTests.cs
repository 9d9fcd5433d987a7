using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.StableDiffusion;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>NaN or infinity in any loaded weight is refused by name (unless the check is turned off for trusted
/// files); a broken scheduler config is refused; sampling that goes non-finite raises instead of returning black.</summary>
public sealed class NonFiniteWeightsTests
{
    private static string CopyPipeline(TempDirectory temp)
    {
        string target = temp.File("pipeline");
        foreach (string file in Directory.GetFiles(TestPaths.TinySd1, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(target, Path.GetRelativePath(TestPaths.TinySd1, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        return target;
    }

    /// <summary>Sets one element of the last weight tensor (by name) of a component's safetensors file; returns its name.</summary>
    private static string Poison(string componentFolder, float value)
    {
        string file = Directory.GetFiles(componentFolder, "*.safetensors").Single();
        string? name = null;
        SavedConceptFixture.Rewrite(file, t =>
        {
            name = t.Keys.Order(StringComparer.Ordinal).Last(k => k.EndsWith(".weight", StringComparison.Ordinal));
            t[name] = t[name].clone();
            t[name].view(-1)[1] = torch.tensor(value);
        });
        return name!;
    }

    [Theory]
    [InlineData("unet", float.NaN)]
    [InlineData("vae", float.PositiveInfinity)]
    [InlineData("text_encoder", float.NegativeInfinity)]
    public void ABaseModelWithANonFiniteWeightIsRefusedNamingTheTensor(string component, float value)
    {
        using var temp = TestPaths.CreateTempDirectory();
        string folder = CopyPipeline(temp);
        string name = Poison(Path.Combine(folder, component), value);
        var error = Assert.Throws<InvalidWeightsException>(() => PersonalizationPipeline.FromPretrained(folder).Build());
        Assert.Equal([name], error.TensorNames);
        Assert.Contains(component, error.FilePath);

        using var trusted = PersonalizationPipeline.FromPretrained(folder).WithFiniteWeightCheck(false).Build();
        Assert.NotNull(trusted.Components.UNet);
    }

    [Fact]
    public async Task NonFiniteLatentsRaiseInsteadOfReturningABlackImage()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string folder = CopyPipeline(temp);
        Poison(Path.Combine(folder, "unet"), float.NaN);
        using var pipeline = PersonalizationPipeline.FromPretrained(folder).WithFiniteWeightCheck(false).Build();
        var error = await Assert.ThrowsAsync<NonFiniteValuesException>(() => pipeline.GenerateAsync("a dog", new GenerationOptions { Steps = 3, Seed = 2 }));
        Assert.Equal("a dog", error.Prompt);
        Assert.InRange(error.Step, 1, 3);
    }

    [Fact]
    public void AModelWhoseSchedulerConfigDecreasesItsBetasIsRefused()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string folder = CopyPipeline(temp);
        string path = Path.Combine(folder, "scheduler", "scheduler_config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        (json["beta_start"], json["beta_end"]) = (json["beta_end"]!.DeepClone(), json["beta_start"]!.DeepClone());
        File.WriteAllText(path, json.ToJsonString());
        var error = Assert.Throws<ModelConfigException>(() => PersonalizationPipeline.FromPretrained(folder).Build());
        Assert.Equal(path, error.FilePath);
        Assert.Equal("beta_start", error.Key);
    }

    [Fact]
    public void StateDictValidateChecksWithoutChangingTheModule()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string folder = CopyPipeline(temp);
        string name = Poison(Path.Combine(folder, "vae"), float.NaN);
        using var vae = AttnDreamBooth.Models.Vae.AutoencoderKL.FromFolder(Path.Combine(TestPaths.TinySd1, "vae"));
        var before = TinyPipeline.Snapshot(vae);
        using var source = StateDictSource.OpenComponent(Path.Combine(folder, "vae"));
        var options = new StateDictLoadOptions { KeyMap = AttnDreamBooth.Models.Vae.VaeWeightNames.ToCurrentName };
        var error = Assert.Throws<InvalidWeightsException>(() => StateDictLoader.Validate(vae, source, options));
        Assert.Equal([name], error.TensorNames);
        Assert.All(vae.state_dict(), p => Assert.True(TinyPipeline.BitEqual(before[p.Key], p.Value), p.Key));
        Assert.True(StateDictLoader.Validate(vae, source, options with { CheckFinite = false }).IsExact);
    }
}
