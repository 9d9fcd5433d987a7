using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>What adapting the VAE decoder to one concept's photos does (<see cref="DecoderAdaptationReport.Measure"/>).</summary>
/// <param name="Concept">The concept's name.</param>
/// <param name="Before">The base decoder's reconstructions of the photos.</param>
/// <param name="After">The adapted decoder's reconstructions of the same photos.</param>
/// <param name="NewPhotos">The adapted decoder's reconstructions of photos of the concept it was not adapted on (other
/// seed, positions and backgrounds as the concept's photo plan draws them).</param>
/// <param name="World">The adapted decoder's reconstructions of held-out world scenes (what it does to everything else),
/// as <see cref="ShapesModelQuality.MeasureReconstruction"/>.</param>
public sealed record DecoderAdaptationReport(string Concept, ConceptReconstruction Before, ConceptReconstruction After, ConceptReconstruction NewPhotos, QualityReport World)
{
    /// <summary>The seed offset of the new photos from the concept's photo seed.</summary>
    public const long NewPhotoSeedOffset = 1000;

    /// <summary>
    /// For each concept, a fresh VAE from <paramref name="loadVae"/> is adapted to the concept's photos with
    /// <paramref name="options"/> (<see cref="VaeDecoderAdaptation"/>), and its reconstructions are scored before and
    /// after, on <paramref name="newPhotos"/> new photos of the concept, and on <paramref name="worldScenes"/> held-out
    /// world scenes.
    /// </summary>
    public static IReadOnlyList<DecoderAdaptationReport> Measure(Func<AutoencoderKL> loadVae, ShapesWorld world, IReadOnlyList<ConceptSpec> concepts,
        DecoderAdaptationOptions options, int newPhotos, int worldScenes, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(loadVae);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concepts);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(newPhotos);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(worldScenes);
        var reports = new List<DecoderAdaptationReport>();
        foreach (var concept in concepts)
        {
            ct.ThrowIfCancellationRequested();
            using var vae = loadVae();
            var before = Single(ShapesModelQuality.MeasureConceptReconstruction(vae, world, [concept], ct));
            using (var photos = ImageBatch.ToTensor(before.PhotoImages))
                VaeDecoderAdaptation.Run(vae, photos, options, progress: null, ct);
            var after = Single(ShapesModelQuality.MeasureConceptReconstruction(vae, world, [concept], ct));
            var unseen = concept with { Photos = concept.Photos with { Count = newPhotos, Seed = concept.Photos.Seed + NewPhotoSeedOffset } };
            var fresh = Single(ShapesModelQuality.MeasureConceptReconstruction(vae, world, [unseen], ct));
            var scenes = ShapesModelQuality.MeasureReconstruction(vae, world, worldScenes, ct: ct);
            reports.Add(new DecoderAdaptationReport(concept.Name, before, after, fresh, scenes));
        }
        return reports;
    }

    private static ConceptReconstruction Single(IReadOnlyList<ConceptReconstruction> results) => results[0];
}
