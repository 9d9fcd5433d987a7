namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary>
/// Pretraining tests run alone: <c>ShapesNetworks</c> initialises its weights from libtorch's process-wide generator
/// (seeded just before construction, as TorchSharp's modules offer no generator argument), so a test in another class
/// drawing random numbers at the same moment changes the initial weights and a resume is no longer bit-identical.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PretrainingCollection
{
    public const string Name = "Shapes pretraining (alone)";
}
