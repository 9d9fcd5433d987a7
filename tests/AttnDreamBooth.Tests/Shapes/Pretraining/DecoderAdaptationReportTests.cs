using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Pretraining;
using TorchSharp;

namespace AttnDreamBooth.Tests.Shapes.Pretraining;

/// <summary><see cref="DecoderAdaptationReport.Measure"/> on a tiny random VAE: every concept starts from a fresh VAE,
/// the "before" column is the unadapted VAE's, and the adaptation is what changes the others.</summary>
public sealed class DecoderAdaptationReportTests
{
    private static AutoencoderKL TinyVae()
    {
        torch.manual_seed(5);
        return new AutoencoderKL(new AutoencoderKLConfig { BlockOutChannels = [8], NormNumGroups = 4, SampleSize = 64, MidBlockAddAttention = false });
    }

    [Fact]
    public void EachConceptIsMeasuredOnAFreshVaeBeforeAndAfterItsOwnAdaptation()
    {
        var world = ShapesWorld.Default;
        string folder = Path.Combine(TestPaths.RepoRoot, "samples", "concepts");
        var concepts = new[] { ConceptSpec.Load(Path.Combine(folder, "harlequin-star.json"), world), ConceptSpec.Load(Path.Combine(folder, "mint-ring.json"), world) };
        var options = new DecoderAdaptationOptions { Steps = 3, LearningRate = 1e-3, BatchSize = 5 };
        int loads = 0;
        var reports = DecoderAdaptationReport.Measure(() => { loads++; return TinyVae(); }, world, concepts, options, newPhotos: 2, worldScenes: 3);

        Assert.Equal(2, loads);
        Assert.Equal(concepts.Select(c => c.Name), reports.Select(r => r.Concept));
        for (int i = 0; i < concepts.Length; i++)
        {
            var r = reports[i];
            using var unadapted = TinyVae();
            var expected = ShapesModelQuality.MeasureConceptReconstruction(unadapted, world, [concepts[i]])[0];
            Assert.Equal(expected.Reconstructions.Select(x => x.Score), r.Before.Reconstructions.Select(x => x.Score));
            Assert.Equal(concepts[i].Photos.Count, r.After.Reconstructions.Count);
            Assert.False(r.Before.Images[0].Pixels.AsSpan().SequenceEqual(r.After.Images[0].Pixels), "the adaptation changed nothing");
            Assert.Equal(2, r.NewPhotos.Photos.Count);
            Assert.False(r.NewPhotos.PhotoImages[0].Pixels.AsSpan().SequenceEqual(r.Before.PhotoImages[0].Pixels), "the new photos are the adapted ones");
            Assert.Equal(3, r.World.Samples.Count);
        }
    }
}
