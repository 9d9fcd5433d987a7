using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>Draws appearances no captioned render has, for training an autoencoder beyond the world's palette.</summary>
internal static class NovelAppearances
{
    /// <summary>
    /// An appearance with uniformly random colours (fill, pattern ink, outline, emblem), a random world pattern, an
    /// outline two times in three and an emblem one time in two, with widths and sizes inside what concept specs allow.
    /// </summary>
    public static ConceptAppearance Draw(ShapesWorld world, WorldRandom rng)
    {
        RgbColor Color() => new((byte)rng.NextInt(256), (byte)rng.NextInt(256), (byte)rng.NextInt(256));
        var primary = Color();
        var secondary = Color();
        var pattern = world.Patterns[rng.NextInt(world.Patterns.Count)];
        var outline = Color();
        double outlineWidth = rng.NextBool(2.0 / 3) ? rng.NextDouble(0.02, 0.12) : 0;
        var emblem = rng.NextBool(0.5) ? world.Shapes[rng.NextInt(world.Shapes.Count)] : null;
        var emblemColor = Color();
        double emblemSize = emblem is null ? 0 : rng.NextDouble(0.15, 0.45);
        return new ConceptAppearance(primary, secondary, pattern, outline, outlineWidth, emblem, emblemColor, emblemSize);
    }
}
