using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using AttnDreamBooth.Shapes;

namespace AttnDreamBooth.Tests.Shapes;

/// <summary>The world's generator and what it decides are pinned: the shipped model was pretrained on the scenes and
/// captions they give, so a change to either is a change of the world, not a refactoring.</summary>
public class WorldRandomTests
{
    // Computed with an independent Python implementation of xoshiro256** seeded through SplitMix64 (Blackman and Vigna's
    // reference algorithms).
    [Theory]
    [InlineData(0L, 0x99ec5f36cb75f2b4UL, 0xbf6e1f784956452aUL, 0x1a5f849d4933e6e0UL)]
    [InlineData(42L, 0x15780b2e0c2ec716UL, 0x6104d9866d113a7eUL, 0xae17533239e499a1UL)]
    [InlineData(-7L, 0xf305399b3b63f2c2UL, 0xd693dd0a37ae5bdcUL, 0x736e8338a3f226b9UL)]
    public void TheRawSequenceIsXoshiro256StarStar(long seed, ulong first, ulong second, ulong third)
    {
        var random = new WorldRandom(seed);
        Assert.Equal([first, second, third], new[] { random.NextUInt64(), random.NextUInt64(), random.NextUInt64() });
    }

    [Fact]
    public void DoublesTakeTheTop53BitsAndIntegersAreUnbiasedReductions()
    {
        var doubles = new WorldRandom(2024);
        Assert.Equal(0.055792889110163335, doubles.NextDouble());
        Assert.Equal(0.782103772866755, doubles.NextDouble());
        var ints = new WorldRandom(2024);
        Assert.Equal([4, 5, 441, 2108222392], new[] { ints.NextInt(6), ints.NextInt(8), ints.NextInt(1000), ints.NextInt(int.MaxValue) });
        Assert.Throws<ArgumentOutOfRangeException>(() => ints.NextInt(0));
    }

    // The fingerprint of 300 scenes and captions of the default world as the shipped model's pretraining draws them (its
    // recipe's seed and sampler settings, ShapesWorldSource); recorded with the generator the model was pretrained with.
    // No pixels, so it does not depend on the rasterizer.
    [Fact]
    public void ScenesAndCaptionsOfTheDefaultWorldAreThoseTheShippedModelWasTrainedOn()
    {
        var sampler = new ShapesSampler(ShapesWorld.Default, 20261204,
            new ShapesSamplerOptions { ImageSize = 64, EmptyCaptionProbability = 0, HeldOut = HeldOutPolicy.Exclude });
        var text = new StringBuilder();
        for (int i = 0; i < 300; i++)
        {
            var (scene, caption) = sampler.Describe(i);
            text.Append(caption).Append('|').Append(scene.Background.Name).Append('|').Append(scene.BackgroundSeed);
            foreach (var o in scene.Objects)
                text.Append('|').Append(o.Shape.Name).Append(',').Append(o.Color.Name).Append(',').Append(o.Pattern.Name).Append(',')
                    .Append(o.Size.Name).Append(',').Append(o.Position.Name).Append(',')
                    .Append(string.Join(",", new[] { o.CenterX, o.CenterY, o.Side }.Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
            text.Append('\n');
        }
        Assert.Equal("7de2cad08f1b45ede9579c5ab88c75348a148876e7247a9e2256bb8f78e148f9", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))));
    }
}
