using AttnDreamBooth.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Training;

/// <summary>The checkpoint writers read the optimizer's moments in place (<see cref="AdamWOptimizer.StateViews"/>) instead of
/// copying them, so a checkpoint does not double the optimizer's memory at a stage's largest moment.</summary>
public sealed class AdamWStateViewTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ViewsHoldTheCopiesValuesShareTheLiveStorageAndMayBeDisposed(bool eightBit)
    {
        var format = eightBit ? AdamWStateFormat.BlockwiseInt8 : AdamWStateFormat.Float32;
        var generator = new Generator(11);
        using var parameter = new Parameter(randn([4096], generator: generator));
        using var optimizer = new AdamWOptimizer([("p", parameter)], AdamWOptions.Default, 1e-3, format) { MinQuantizedElements = 1 };
        for (int step = 0; step < 2; step++)
        {
            parameter.grad = randn([4096], generator: generator);
            optimizer.Step();
            optimizer.ZeroGrad();
        }

        var copies = optimizer.StateTensors();
        var views = optimizer.StateViews();
        Assert.Equal(copies.Keys.Order(StringComparer.Ordinal), views.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(format == AdamWStateFormat.Float32 ? 2 : 4, views.Count);
        foreach (var (name, view) in views)
        {
            Assert.True(view.eq(copies[name]).all().item<bool>(), name);
            Assert.NotEqual(Address(copies[name]), Address(view));
        }
        // A view is the live moment: the next step changes it, not the copy.
        var pointers = views.ToDictionary(v => v.Key, v => Address(v.Value));
        parameter.grad = randn([4096], generator: generator);
        optimizer.Step();
        optimizer.ZeroGrad();
        var after = optimizer.StateTensors();
        foreach (var (name, view) in views)
        {
            Assert.True(view.eq(after[name]).all().item<bool>(), name);
            view.Dispose();
        }
        Assert.Contains(after, p => !p.Value.eq(copies[p.Key]).all().item<bool>());

        // Disposing the views left the optimizer's moments in place and working.
        var again = optimizer.StateViews();
        Assert.Equal(pointers, again.ToDictionary(v => v.Key, v => Address(v.Value)));
        parameter.grad = randn([4096], generator: generator);
        optimizer.Step();
        Assert.True(parameter.isfinite().all().item<bool>());
        foreach (var t in copies.Values.Concat(after.Values).Concat(again.Values)) t.Dispose();
    }

    private static long Address(Tensor t)
    {
        using var scope = NewDisposeScope();
        return AdamWOnePassUpdate.DataPointer(t);
    }
}
