using AttnDreamBooth.Shapes;

namespace AttnDreamBooth.Tests.Shapes;

public class ShapesSamplerTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;

    [Fact]
    public void SameSeedAndIndexGiveTheSamePixelsCaptionAndScene()
    {
        var a = new ShapesSampler(World, 123).Sample(7);
        var b = new ShapesSampler(World, 123).Sample(7);
        Assert.Equal(a.Image.Pixels, b.Image.Pixels);
        Assert.Equal(a.Caption, b.Caption);
        Assert.Equal(a.Scene.Background, b.Scene.Background);
        Assert.Equal(a.Scene.Objects, b.Scene.Objects);
        Assert.Equal(a.Masks[0].Coverage, b.Masks[0].Coverage);

        // Order independence: drawing other indices first changes nothing.
        var sampler = new ShapesSampler(World, 123);
        for (int i = 0; i < 5; i++) sampler.Sample(i);
        Assert.Equal(a.Image.Pixels, sampler.Sample(7).Image.Pixels);

        var other = new ShapesSampler(World, 124).Sample(7);
        Assert.NotEqual(a.Image.Pixels, other.Image.Pixels);
    }

    [Fact]
    public void RenderingIsAPureFunctionOfTheSceneAndScalesToOtherSizes()
    {
        var scene = new ShapesSampler(World, 9).Describe(3).Scene;
        var r1 = ShapesRenderer.Render(scene, 64);
        var r2 = ShapesRenderer.Render(scene, 64);
        Assert.Equal(r1.Image.Pixels, r2.Image.Pixels);
        var big = ShapesRenderer.Render(scene, 128);
        Assert.Equal(128, big.Image.Width);
        // The object covers about four times as many pixels at twice the side.
        Assert.InRange(big.Masks[0].Area / r1.Masks[0].Area, 3.7, 4.3);
        Assert.Throws<ArgumentOutOfRangeException>(() => ShapesRenderer.Render(scene, 4));
    }

    [Fact]
    public void HeldOutCombinationsAndLowContrastPairsAreNeverSampled()
    {
        var sampler = new ShapesSampler(World, 2024, new ShapesSamplerOptions { SecondObjectProbability = 0.3 });
        int pairs = 0;
        for (int i = 0; i < 3000; i++)
        {
            var scene = sampler.Describe(i).Scene;
            Assert.False(World.IsHeldOut(scene), $"sample {i} is held out");
            Assert.All(scene.Objects, o => Assert.True(World.IsCompatible(o.Color, scene.Background), $"sample {i}: {o.Color.Name} on {scene.Background.Name}"));
            if (scene.Objects.Count == 2) pairs++;
        }
        Assert.InRange(pairs, 750, 1050);
    }

    [Fact]
    public void HeldOutOnlyPolicyProducesEveryHeldOutCombinationAndNothingElse()
    {
        var sampler = new ShapesSampler(World, 77, new ShapesSamplerOptions { HeldOut = HeldOutPolicy.Only });
        var seen = new HashSet<HeldOutCombination>();
        for (int i = 0; i < 800; i++)
        {
            var scene = sampler.Describe(i).Scene;
            var hits = World.HeldOut.Where(h => h.Matches(scene.Objects[0], scene.Background)).ToArray();
            Assert.NotEmpty(hits);
            seen.UnionWith(hits);
        }
        Assert.Equal(World.HeldOut.Count, seen.Count);
    }

    [Fact]
    public void EmptyCaptionsFollowTheOptionAndCaptionsVaryInLength()
    {
        var sampler = new ShapesSampler(World, 3, new ShapesSamplerOptions { EmptyCaptionProbability = 0.1 });
        var captions = Enumerable.Range(0, 2000).Select(i => sampler.Describe(i).Caption).ToArray();
        Assert.InRange(captions.Count(c => c.Length == 0), 160, 240);
        var lengths = captions.Where(c => c.Length > 0).Select(c => c.Split(' ').Length).ToArray();
        Assert.Contains(2, lengths); // "a star"
        Assert.True(lengths.Max() >= 12, $"longest caption has {lengths.Max()} words");
        Assert.DoesNotContain(captions, c => c.Contains("  ", StringComparison.Ordinal) || c.StartsWith(' ') || c.EndsWith(' '));
        Assert.DoesNotContain(Enumerable.Range(0, 500).Select(i => new ShapesSampler(World, 3).Describe(i).Caption), c => c.Length == 0);
    }

    [Fact]
    public void FullCaptionNamesEveryAttribute()
    {
        var w = World;
        var obj = new SceneObject(w.Shape("star"), w.Color("red"), w.Pattern("striped"), w.Size("large"), w.Position("left"), 0.28, 0.5, 0.46);
        var scene = new Scene(w.Background("snow"), 1, [obj]);
        Assert.Equal("a photo of a large red striped star on the left in the snow", ShapesCaptions.Full(scene));
        var small = obj with { Size = w.Size("small"), Side = 0.3 };
        var pair = new Scene(w.Background("beach"), 1, [small with { Color = w.Color("orange"), Pattern = w.Pattern("solid") }, small with { Shape = w.Shape("ring"), Position = w.Position("right"), CenterX = 0.72 }]);
        Assert.Equal("a small orange solid star next to a small red striped ring on the beach", ShapesCaptions.Full(pair, ""));
    }

    [Fact]
    public void MasksCoverExactlyTheDrawnFill()
    {
        var w = World;
        var obj = new SceneObject(w.Shape("square"), w.Color("red"), w.Pattern("solid"), w.Size("large"), w.Position("centre"), 0.5, 0.5, 0.46);
        var r = ShapesRenderer.Render(new Scene(w.Background("white"), 1, [obj]));
        var mask = r.Masks[0];
        int inside = 0;
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
            {
                var c = r.Image[x, y];
                if (mask.Coverage[y * 64 + x] == 255) { Assert.Equal(w.Color("red").Fill, c); inside++; }
                else if (mask.Coverage[y * 64 + x] == 0) Assert.Equal(w.Background("white")["base"], c);
            }
        Assert.InRange(inside, 27 * 27, 30 * 30);
        var (cx, cy) = mask.Centroid;
        Assert.InRange(cx, 31.5, 32.5);
        Assert.InRange(cy, 31.5, 32.5);
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesSampler(World, 1, new ShapesSamplerOptions { EmptyCaptionProbability = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesSampler(World, 1, new ShapesSamplerOptions { ImageSize = 4 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShapesSampler(World, 1).Describe(-1));
    }
}
