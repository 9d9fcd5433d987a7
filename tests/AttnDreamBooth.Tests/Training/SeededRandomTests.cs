using AttnDreamBooth.Training;

namespace AttnDreamBooth.Tests.Training;

public sealed class SeededRandomTests
{
    [Fact]
    public void Same_seed_same_sequence_and_state_restores_exactly()
    {
        var a = new SeededRandom(42);
        var b = new SeededRandom(42);
        for (int i = 0; i < 10; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
        Assert.NotEqual(new SeededRandom(43).NextUInt64(), new SeededRandom(42).NextUInt64());

        var state = a.GetState();
        var expected = Enumerable.Range(0, 20).Select(_ => a.NextDouble()).ToArray();
        var restored = SeededRandom.FromState(state);
        Assert.Equal(expected, Enumerable.Range(0, 20).Select(_ => restored.NextDouble()));
    }

    [Fact]
    public void Ranges_hold()
    {
        var r = new SeededRandom(1);
        var counts = new int[3];
        for (int i = 0; i < 3000; i++)
        {
            double d = r.NextDouble();
            Assert.InRange(d, 0.0, 1.0 - double.Epsilon);
            counts[r.NextInt(3)]++;
            Assert.InRange(r.NextDouble(-45, 45), -45.0, 45.0);
        }
        Assert.All(counts, c => Assert.InRange(c, 850, 1150));
        Assert.Equal(0, r.NextInt(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.NextInt(0));
    }

    [Fact]
    public void Invalid_states_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => SeededRandom.FromState([1, 2, 3]));
        Assert.Throws<ArgumentException>(() => SeededRandom.FromState([0, 0, 0, 0]));
    }

    [Fact]
    public void Shuffle_is_a_seeded_permutation()
    {
        var x = Enumerable.Range(0, 10).ToList();
        var y = Enumerable.Range(0, 10).ToList();
        new SeededRandom(5).Shuffle(x);
        new SeededRandom(5).Shuffle(y);
        Assert.Equal(x, y);
        Assert.Equal(Enumerable.Range(0, 10), x.Order());
        Assert.NotEqual(Enumerable.Range(0, 10), x);
    }
}
