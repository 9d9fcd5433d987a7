namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>
/// Pretraining tests run alone: libtorch 2.10's CPU convolution backward intermittently returns garbage gradients when
/// other threads run kernels at the same time (measured; see <c>PretrainingOptions.IntraOpThreads</c>), and these tests
/// assert bit-identical resumes.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PretrainingCollection
{
    public const string Name = "Shapes pretraining (alone)";
}
