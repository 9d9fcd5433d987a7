using AttnDreamBooth.Personalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// Every read of <c>Parameter.grad</c> is a new native handle on the gradient. The trainer clips outside any dispose
/// scope, so a handle the clipping left alive kept that gradient's memory until the garbage collector ran: a real-size
/// stage-3 run held a second set of U-Net gradients (3.2 GiB) from its second step on.
/// </summary>
public sealed class GradientClippingHandleTests
{
    [Theory]
    [InlineData(1.0, false)]
    [InlineData(null, true)]
    [InlineData(null, false)]
    public void ClippingLeavesNoTensorAlive(double? maxGradNorm, bool measure)
    {
        var generator = new Generator(5);
        var parameters = Enumerable.Range(0, 4).Select(i => new Parameter(randn([16, 8], generator: generator))).ToArray();
        foreach (var p in parameters) p.grad = randn([16, 8], generator: generator).mul(Kept(10));
        var settings = StagePlan.Paper[TrainingStage.UNet] with { MaxGradNorm = maxGradNorm };
        var statistics = DisposeScopeManager.Statistics;
        long before = statistics.ThreadTotalLiveCount;

        double norm = StageOptimizer.ClipGradients(parameters, settings, measure);

        Assert.Equal(before, statistics.ThreadTotalLiveCount);
        if (maxGradNorm is null && !measure) Assert.True(double.IsNaN(norm));
        else Assert.True(norm > 1, $"norm {norm}");
        if (maxGradNorm is double max)
        {
            using var scope = NewDisposeScope();
            double clipped = Math.Sqrt(parameters.Sum(p => p.grad!.pow(Kept(2)).sum().item<float>()));
            Assert.Equal(max, clipped, 1e-4);
        }
        foreach (var p in parameters) p.Dispose();
    }
}
