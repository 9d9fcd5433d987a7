using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Tests.IO;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// The library's JSON files as earlier versions spelt them (tests/fixtures/written-before-snake-case, written by the
/// code of that time; its README lists the values) still read to the same values, the files written now are snake_case,
/// and the run fingerprint a checkpoint is resumed by has not changed with the spelling.
/// </summary>
public sealed class WrittenJsonCompatibilityTests
{
    private static string Fixture(string name) => Path.Combine(TestPaths.FixturesRoot, "written-before-snake-case", name);

    /// <summary>The plan the fixtures were written with.</summary>
    private static StagePlan FixturePlan()
    {
        var lora = new LoraOptions(4, 8, 0.1);
        return StagePlan.Paper
            .With(TrainingStage.CrossAttention, s => s with { Steps = 3, Lora = lora, LoraModules = LoraUNetModules.CrossAttention, PriorLossWeight = 1.0, MaxGradNorm = 1.0 })
            .With(TrainingStage.UNet, s => s with { Steps = 5, Lora = lora, LoraModules = LoraUNetModules.CrossAttention | LoraUNetModules.FeedForward })
            .WithBatchSize(1) with
        {
            CheckpointInterval = 2,
            IdentifierToken = "sks",
            EmbeddingInitialization = EmbeddingInitialization.IdentifierToken,
            PriorPreservation = new PriorPreservationOptions { NumClassImages = 8, Seed = 3, Sampler = "ddim" },
        };
    }

    [Fact]
    public void AStagePlanWrittenInPascalCaseReadsBackAndIsNowWrittenInSnakeCase()
    {
        string old = File.ReadAllText(Fixture("stage-plan.json"));
        Assert.Contains("\"LoraModules\": \"CrossAttention, FeedForward\"", old);
        Assert.Equal(FixturePlan(), StagePlan.FromJson(old));

        string json = FixturePlan().ToJson();
        var keys = SnakeCaseJson.AssertKeys(json);
        Assert.Contains("learning_rate", keys);
        Assert.Contains("\"lora_modules\": \"cross_attention, feed_forward\"", json);
        Assert.Contains("\"embedding_initialization\": \"identifier_token\"", json);
        Assert.Equal(FixturePlan(), StagePlan.FromJson(json));
        // camelCase, as System.Text.Json's camel-case policy spells the plan.
        string camel = JsonSerializer.Serialize(FixturePlan(), new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        Assert.Contains("\"learningRate\"", camel);
        Assert.Equal(FixturePlan(), StagePlan.FromJson(camel));
    }

    [Fact]
    public void TheRunFingerprintOfAPlanIsTheOneEarlierVersionsRecordedInTheirCheckpoints()
    {
        string fingerprint = PersonalizationTrainer.Fingerprint("/x/pipeline", "sks", "dog", "a photo of a sks dog", [[1, 2, 3]], FixturePlan(), new TrainingOptions { Seed = 5 });
        Assert.Equal("B507FBC9830E8A303FC98D8A7A890E09CDE02FBD4C89453471A9F7E6E2AFDB35", fingerprint);
    }

    [Fact]
    public void ASavedConceptsPascalCaseMetadataReadsBackAndIsNowWrittenInSnakeCase()
    {
        var old = JsonFiles.Deserialize<PersonalizedModelMetadata>(File.ReadAllText(Fixture("attndreambooth.json")))!;
        var expected = new PersonalizedModelMetadata(1, "sks", "dog", "../tiny-sd1/pipeline", 5, FixturePlan(), [1.0, 0.5])
        {
            TokenId = 48136,
            TokenSpelling = "sks</w>",
            TokenKind = ConceptTokenKind.Existing,
            BaseModelName = "pipeline",
            BaseModelFingerprint = "sha256:0123",
            LoraFile = PersonalizedModel.LoraWeightsFile,
        };
        Assert.Equal(expected with { LossHistory = null }, old with { LossHistory = null });
        Assert.Equal(expected.LossHistory, old.LossHistory);

        string json = JsonFiles.Serialize(expected);
        var keys = SnakeCaseJson.AssertKeys(json);
        Assert.Contains("base_model_fingerprint", keys);
        Assert.Contains("\"token_kind\": \"existing\"", json);
        Assert.Contains("\"token_spelling\": \"sks</w>\"", json);
        var read = JsonFiles.Deserialize<PersonalizedModelMetadata>(json)!;
        Assert.Equal(expected with { LossHistory = null }, read with { LossHistory = null });
    }

    [Fact]
    public void ATrainingCheckpointWrittenInPascalCaseReadsBackAndIsNowWrittenInSnakeCase()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var expected = new TrainingCheckpointState
        {
            Stage = 2, StepInStage = 1, GlobalStep = 3, Seed = 5, RunFingerprint = "ABC", Token = "sks", Category = "dog", HasUNet = true, HasLora = true,
            LossHistory = [0.5, 0.25, 0.125],
        };
        string old = dir.File("old");
        Directory.CreateDirectory(old);
        File.Copy(Fixture("training-checkpoint.json"), Path.Combine(old, TrainingCheckpoint.JsonFile));
        using (var embedding = torch.zeros(2))
            SafetensorsWriter.Write(Path.Combine(old, TrainingCheckpoint.StateFile), new Dictionary<string, torch.Tensor> { ["concept.embedding"] = embedding });

        var state = CheckpointFolder.ReadState(old);
        Assert.Equal(DateTimeOffset.Parse("2026-12-05T08:32:52.9552171+00:00", System.Globalization.CultureInfo.InvariantCulture), state.WrittenAt);
        AssertSameState(expected, state);
        AssertSameState(expected, TrainingCheckpoint.Read(old).State);
        Assert.Null(CheckpointFolder.Problem(old));

        using (var embedding = torch.zeros(2))
        {
            string written = TrainingCheckpoint.Write(dir.File("new"), expected, new Dictionary<string, torch.Tensor> { ["concept.embedding"] = embedding });
            var keys = SnakeCaseJson.AssertKeys(File.ReadAllText(Path.Combine(written, TrainingCheckpoint.JsonFile)));
            Assert.Equal(["format_version", "stage", "step_in_stage", "global_step", "seed", "run_fingerprint", "token", "category", "has_unet", "has_lora", "loss_history", "written_at"], keys);
            AssertSameState(expected, CheckpointFolder.ReadState(written));
        }
    }

    private static void AssertSameState(TrainingCheckpointState expected, TrainingCheckpointState actual)
    {
        Assert.Equal(expected.LossHistory, actual.LossHistory);
        Assert.Equal(expected with { LossHistory = Array.Empty<double>(), WrittenAt = default }, actual with { LossHistory = Array.Empty<double>(), WrittenAt = default });
    }
}
