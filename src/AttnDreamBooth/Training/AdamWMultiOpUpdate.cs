using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Training;

/// <summary>
/// The original AdamW update: PyTorch's single-tensor AdamW written as nine whole-tensor operations in float32
/// (decay, two for each moment, sqrt, div, add, addcdiv). Each operation reads and writes whole tensors and the
/// denominator is a parameter-sized temporary, so it makes about 16 passes over memory per parameter. Kept as the
/// reference the one-pass update is tested and benchmarked against.
/// </summary>
internal static class AdamWMultiOpUpdate
{
    /// <summary>Updates <paramref name="master"/> (float32), <paramref name="expAvg"/> and <paramref name="expAvgSq"/> in place.</summary>
    public static void Apply(torch.Tensor master, torch.Tensor grad, torch.Tensor expAvg, torch.Tensor expAvgSq, in AdamWStepScalars s)
    {
        using var scope = torch.NewDisposeScope();
        master.mul_(Kept(s.Decay));
        expAvg.mul_(Kept(s.Beta1)).add_(grad, alpha: Kept(s.OneMinusBeta1));
        expAvgSq.mul_(Kept(s.Beta2)).addcmul_(grad, grad, value: Kept(s.OneMinusBeta2));
        var denom = expAvgSq.sqrt().div_(Kept(s.BiasCorrection2Sqrt)).add_(Kept(s.Epsilon), One);
        master.addcdiv_(expAvg, denom, value: Kept(-s.StepSize));
    }
}
