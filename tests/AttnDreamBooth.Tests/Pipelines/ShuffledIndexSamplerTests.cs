using AttnDreamBooth.Pipelines;

namespace AttnDreamBooth.Tests.Pipelines;

public sealed class ShuffledIndexSamplerTests
{
    [Fact]
    public void Every_epoch_is_a_permutation_and_seeds_reproduce()
    {
        var s = new ShuffledIndexSampler(5, seed: 9);
        var first = s.NextBatch(5);
        var second = s.NextBatch(5);
        Assert.Equal(Enumerable.Range(0, 5), first.Order());
        Assert.Equal(Enumerable.Range(0, 5), second.Order());
        Assert.Equal(2, s.Epoch);
        Assert.Equal(first.Concat(second), new ShuffledIndexSampler(5, seed: 9).NextBatch(10));
        Assert.NotEqual(first.Concat(second), new ShuffledIndexSampler(5, seed: 10).NextBatch(10));
    }

    [Fact]
    public void Restored_state_continues_identically()
    {
        var a = new ShuffledIndexSampler(7, seed: 1);
        a.NextBatch(4);
        var state = a.GetState();
        var expected = a.NextBatch(20);
        var b = ShuffledIndexSampler.FromState(state);
        Assert.Equal(expected, b.NextBatch(20));
        Assert.Equal(a.Epoch, b.Epoch);
    }

    [Fact]
    public void Inconsistent_states_are_rejected()
    {
        var good = new ShuffledIndexSampler(3, seed: 1);
        good.Next();
        var state = good.GetState();
        Assert.Throws<ArgumentException>(() => ShuffledIndexSampler.FromState(state with { Order = [0, 0, 1] }));
        Assert.Throws<ArgumentException>(() => ShuffledIndexSampler.FromState(state with { Position = 4 }));
        Assert.Throws<ArgumentException>(() => ShuffledIndexSampler.FromState(state with { Count = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShuffledIndexSampler(0, seed: 1));
    }
}
