using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;

namespace AttnDreamBooth.Tests.IO;

/// <summary>The one JSON spelling of written files, and the reading of files spelt as earlier versions wrote them.</summary>
public sealed class JsonFilesTests
{
    private sealed record Inner(int StepInStage, bool HasUNet, double? HeatmapIoU);

    private sealed record Outer(string Name, TrainingStage Stage, PredictionType Prediction, IReadOnlyDictionary<string, Inner> ByName, IReadOnlyList<Inner> Items);

    [Theory]
    [InlineData("LossHistory", "loss_history")]
    [InlineData("HasUNet", "has_unet")]
    [InlineData("UNetSteps", "unet_steps")]
    [InlineData("HeatmapIoU", "heatmap_iou")]
    [InlineData("Beta1", "beta1")]
    [InlineData("perPrompt", "per_prompt")]
    [InlineData("VPrediction", "v_prediction")]
    public void TheNamingPolicyWritesSnakeCaseWithUNetAndIoUAsOneWord(string name, string expected) =>
        Assert.Equal(expected, JsonFiles.NamingPolicy.ConvertName(name));

    [Fact]
    public void KeysAndEnumValuesAreWrittenInSnakeCaseAndDictionaryKeysAsGiven()
    {
        var value = new Outer("a", TrainingStage.CrossAttention, PredictionType.VPrediction,
            new Dictionary<string, Inner> { ["KeepMe"] = new(1, true, 0.5) }, [new(2, false, null)]);
        string json = JsonFiles.Serialize(value);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(["name", "stage", "prediction", "by_name", "items"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("cross_attention", root.GetProperty("stage").GetString());
        Assert.Equal("v_prediction", root.GetProperty("prediction").GetString());
        Assert.Equal(["step_in_stage", "has_unet", "heatmap_iou"], root.GetProperty("by_name").GetProperty("KeepMe").EnumerateObject().Select(p => p.Name));
        var read = JsonFiles.Deserialize<Outer>(json)!;
        Assert.Equal((value.Name, value.Stage, value.Prediction), (read.Name, read.Stage, read.Prediction));
        Assert.Equal(value.ByName["KeepMe"], read.ByName["KeepMe"]);
        Assert.Equal(value.Items, read.Items);
    }

    [Theory]
    [InlineData("""{ "Name": "a", "Stage": "CrossAttention", "Prediction": "VPrediction", "ByName": { "KeepMe": { "StepInStage": 1, "HasUNet": true, "HeatmapIoU": 0.5 } }, "Items": [ { "StepInStage": 2, "HasUNet": false, "HeatmapIoU": null } ] }""")]
    [InlineData("""{ "name": "a", "stage": 2, "prediction": "vPrediction", "byName": { "KeepMe": { "stepInStage": 1, "hasUNet": true, "heatmapIoU": 0.5 } }, "items": [ { "stepInStage": 2, "hasUNet": false, "heatmapIoU": null } ] }""")]
    [InlineData("""{ "name": "a", "stage": "cross_attention", "prediction": "v_prediction", "by_name": { "KeepMe": { "step_in_stage": 1, "has_unet": true, "heatmap_iou": 0.5 } }, "items": [ { "step_in_stage": 2, "has_u_net": false, "heatmap_io_u": null } ] }""")]
    public void PascalCamelAndSnakeCaseFilesReadTheSame(string json)
    {
        var read = JsonFiles.Deserialize<Outer>(json)!;
        Assert.Equal("a", read.Name);
        Assert.Equal(TrainingStage.CrossAttention, read.Stage);
        Assert.Equal(PredictionType.VPrediction, read.Prediction);
        // A dictionary's keys are data: never renamed.
        Assert.Equal(new Inner(1, true, 0.5), Assert.Single(read.ByName, p => p.Key == "KeepMe").Value);
        Assert.Equal(new Inner(2, false, null), Assert.Single(read.Items));
    }

    [Fact]
    public void AnUnknownKeyIsStillUnknownAndBadJsonStillThrows()
    {
        var strict = new JsonSerializerOptions(JsonFiles.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };
        Assert.Throws<JsonException>(() => JsonFiles.Deserialize<Inner>("""{ "step_in_stages": 1 }""", strict));
        Assert.ThrowsAny<JsonException>(() => JsonFiles.Deserialize<Inner>("{"));
    }

    [Fact]
    public void EnumValuesOfHandBuiltFilesUseThePolicy()
    {
        Assert.Equal("single_file", JsonFiles.EnumValue(ConceptExportFormat.SingleFile));
        Assert.Equal("unet", JsonFiles.EnumValue(TrainingStage.UNet));
    }
}
