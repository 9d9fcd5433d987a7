using System.Buffers.Binary;
using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// A saved concept names its base model without this machine's layout: a path relative to the concept folder, the model's
/// portable name and the fingerprint of its weights. A concept folder moved together with its base model still finds it
/// and loads; a missing base model is named clearly; with <see cref="PersonalizedModelLoadOptions.VerifyBaseModel"/> a
/// concept is refused on other weights.
/// </summary>
public sealed class BaseModelReferenceTests
{
    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (string sub in Directory.GetDirectories(from)) CopyDirectory(sub, Path.Combine(to, Path.GetFileName(sub)));
    }

    /// <summary>Trains a one-step concept on a copy of the tiny model at <c>root/models/tiny-sd1</c> and saves it to
    /// <c>root/runs/dog/concept</c>; returns the image it renders.</summary>
    private static async Task<(byte[] Image, string Fingerprint)> TrainAndSaveAsync(string root, StagePlan plan)
    {
        string model = Path.Combine(root, "models", "tiny-sd1");
        CopyDirectory(TestPaths.TinySd1, model);
        using var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options(), model);
        var trained = await pipeline.TrainAsync(TinyPipeline.Dog());
        Assert.Null(trained.BaseModelFingerprint);
        await trained.SaveAsync(Path.Combine(root, "runs", "dog", "concept"));
        return (await TrainedConcepts.RenderAsync(pipeline, "a {} on the grass"), trained.BaseModelFingerprint!);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AConceptMovedWithItsBaseModelFindsItAndLoads(bool lora)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string before = dir.File("before"), after = dir.File("after");
        var plan = lora ? LoraTrainingTests.Plan(1, 1, 0) : TinyPipeline.Plan(1, 1, 0);
        var (image, fingerprint) = await TrainAndSaveAsync(before, plan);
        Assert.StartsWith("sha256:", fingerprint, StringComparison.Ordinal);

        string metadata = File.ReadAllText(Path.Combine(before, "runs", "dog", "concept", PersonalizedModel.MetadataFile));
        Assert.DoesNotContain(dir.Path, metadata, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(metadata))
        {
            Assert.Equal("../../../models/tiny-sd1", json.RootElement.GetProperty("base_model").GetString());
            Assert.Equal("tiny-sd1", json.RootElement.GetProperty("base_model_name").GetString());
            Assert.Equal(fingerprint, json.RootElement.GetProperty("base_model_fingerprint").GetString());
        }

        Directory.Move(before, after);
        string concept = Path.Combine(after, "runs", "dog", "concept");
        string found = PersonalizedModel.FindBaseModel(concept);
        Assert.Equal(Path.Combine(after, "models", "tiny-sd1"), found);

        using var pipeline = PersonalizationPipeline.FromPretrained(found).Build();
        var loaded = await PersonalizedModel.LoadAsync(concept, pipeline, new PersonalizedModelLoadOptions { VerifyBaseModel = true });
        Assert.Equal(found, loaded.BaseModel);
        Assert.Equal("tiny-sd1", loaded.BaseModelName);
        Assert.Equal(fingerprint, loaded.BaseModelFingerprint);
        Assert.Equal(lora, loaded.IsLora);
        Assert.Equal(image, await TrainedConcepts.RenderAsync(pipeline, "a {} on the grass"));
    }

    [Fact]
    public async Task OtherWeightsAreRefusedWhenVerifiedAndAMissingBaseModelIsNamed()
    {
        using var dir = TestPaths.CreateTempDirectory();
        await TrainAndSaveAsync(dir.Path, TinyPipeline.Plan(1, 0, 0));
        string concept = Path.Combine(dir.Path, "runs", "dog", "concept");

        // The same architecture with one VAE weight changed in its lowest mantissa byte: another model.
        string other = dir.File("other");
        CopyDirectory(TestPaths.TinySd1, other);
        string vae = Path.Combine(other, "vae", "diffusion_pytorch_model.safetensors");
        var bytes = File.ReadAllBytes(vae);
        bytes[8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes)] ^= 1;
        File.WriteAllBytes(vae, bytes);

        using (var pipeline = PersonalizationPipeline.FromPretrained(other).Build())
        {
            var error = await Assert.ThrowsAsync<ModelConfigException>(() =>
                PersonalizedModel.LoadAsync(concept, pipeline, new PersonalizedModelLoadOptions { VerifyBaseModel = true }));
            Assert.Contains("fingerprint", error.Message);
            Assert.Contains("tiny-sd1", error.Message);
            Assert.Null(pipeline.Concept);
            // Unverified, the concept loads (its name differs, which is logged).
            var loaded = await PersonalizedModel.LoadAsync(concept, pipeline);
            Assert.Equal("tiny-sd1", loaded.BaseModelName);
        }

        Directory.Delete(Path.Combine(dir.Path, "models"), recursive: true);
        var missing = Assert.Throws<ModelConfigException>(() => PersonalizedModel.FindBaseModel(concept));
        Assert.Contains("../../../models/tiny-sd1", missing.Message);
        Assert.Contains("tiny-sd1", missing.Message);
        Assert.Contains(Path.Combine(dir.Path, "models", "tiny-sd1"), missing.Message);
    }

    [Fact]
    public async Task AConceptSavedBeforeNamesWereRecordedLoadsButCannotBeVerified()
    {
        string saved = Path.Combine(TestPaths.FixturesRoot, "saved-by-0.1.0", "concept");
        using var pipeline = PersonalizationPipeline.FromPretrained(TestPaths.TinySd1).Build();
        var error = await Assert.ThrowsAsync<ModelConfigException>(() =>
            PersonalizedModel.LoadAsync(saved, pipeline, new PersonalizedModelLoadOptions { VerifyBaseModel = true }));
        Assert.Contains("no fingerprint", error.Message);
        var loaded = await PersonalizedModel.LoadAsync(saved, pipeline);
        Assert.Null(loaded.BaseModelName);
        Assert.Null(loaded.BaseModelFingerprint);
        Assert.True(Path.IsPathRooted(loaded.BaseModel));
    }
}
