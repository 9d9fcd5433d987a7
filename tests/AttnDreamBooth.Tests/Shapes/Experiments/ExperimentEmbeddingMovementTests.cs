using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes.Experiments;

namespace AttnDreamBooth.Tests.Shapes.Experiments;

public sealed class ExperimentEmbeddingMovementTests
{
    [Fact]
    public void Each_stage_is_measured_from_where_the_one_before_ended_relative_to_the_initial_row()
    {
        float[] initial = [3, 4];
        var ends = new List<(TrainingStage, IReadOnlyList<float>)>
        {
            (TrainingStage.Embedding, [6, 8]),
            (TrainingStage.CrossAttention, [6, 8]),
            (TrainingStage.UNet, [6, 7.5f]),
        };
        var movement = PersonalizationExperiment.EmbeddingMovement(initial, ends);
        Assert.Equal(1.0, movement[TrainingStage.Embedding], 12);
        Assert.Equal(0.0, movement[TrainingStage.CrossAttention]);
        Assert.Equal(0.1, movement[TrainingStage.UNet], 6);
    }

    [Fact]
    public void A_concept_of_several_rows_starts_every_row_at_the_initial_row_and_takes_the_root_mean()
    {
        float[] initial = [1, 0];
        var ends = new List<(TrainingStage, IReadOnlyList<float>)> { (TrainingStage.Embedding, [1, 3, 5, 0]) };
        // Row 1 moved 3, row 2 moved 4: sqrt((9 + 16) / 2).
        Assert.Equal(Math.Sqrt(12.5), PersonalizationExperiment.EmbeddingMovement(initial, ends)[TrainingStage.Embedding], 12);
    }
}
