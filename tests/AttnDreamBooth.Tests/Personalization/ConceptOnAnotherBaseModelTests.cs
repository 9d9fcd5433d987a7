using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>A concept loaded onto another base model than it was trained on says which model it was trained on.</summary>
public sealed class ConceptOnAnotherBaseModelTests
{
    [Fact]
    public async Task TheErrorNamesTheBaseModelTheConceptWasTrainedOn()
    {
        using var dir = TestPaths.CreateTempDirectory();
        using (var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 0, 1), TinyPipeline.Options()))
        {
            var model = await pipeline.TrainAsync(TinyPipeline.Dog());
            await model.SaveAsync(dir.File("concept"));
        }
        using var other = PersonalizationPipeline.FromPretrained(TestPaths.TinySd2).Build();
        var error = await Assert.ThrowsAsync<ModelConfigException>(() => PersonalizedModel.LoadAsync(dir.File("concept"), other));
        Assert.Equal("base_model", error.Key);
        Assert.Contains("the concept was trained on the base model 'pipeline' (recorded as '", error.Message);
        Assert.Contains($"the pipeline's 'pipeline' from '{TestPaths.TinySd2}'", error.Message);
        Assert.Contains("load it onto the base model it was trained on", error.Message);
        Assert.Null(other.Concept);
    }
}
